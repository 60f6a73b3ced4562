import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { GrailError } from '../errors.js'
import { openDb } from './db.js'
import { listEvents } from './events.js'
import { createToken, hashToken, listTokens, revokeToken, touchToken, verifyToken } from './tokens.js'

test('a token is shown once, stored as its sha256, verified until revoked; events never hold it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-tokens-'))
  const file = join(dir, 'state.db')
  const db = openDb(file)
  try {
    const { token, record } = createToken(db, { name: 'ci', scope: 'write' })
    assert.match(token, /^grail_[A-Za-z0-9_-]{43}$/)
    assert.equal(record.scope, 'write')
    const row = db.prepare('SELECT hash FROM tokens WHERE name = ?').get('ci') as { hash: string }
    assert.equal(row.hash, hashToken(token))
    assert.equal(verifyToken(db, token)?.name, 'ci')
    assert.equal(verifyToken(db, `${token}x`), undefined)
    assert.equal(verifyToken(db, ''), undefined)
    // verifying writes nothing; touching records the use, at most once a minute
    assert.equal(listTokens(db)[0]?.lastUsedAt, null)
    const t = verifyToken(db, token) as NonNullable<ReturnType<typeof verifyToken>>
    touchToken(db, t, Date.parse('2030-01-01T00:00:00Z'))
    assert.equal(listTokens(db)[0]?.lastUsedAt, '2030-01-01T00:00:00.000Z')

    assert.throws(
      () => createToken(db, { name: 'ci', scope: 'read' }),
      (e: unknown) => e instanceof GrailError && e.code === 'TOKEN_EXISTS',
    )
    revokeToken(db, 'ci')
    assert.equal(verifyToken(db, token), undefined)
    assert.throws(
      () => revokeToken(db, 'ci'),
      (e: unknown) => e instanceof GrailError && e.code === 'TOKEN_NOT_FOUND',
    )
    // a revoked name may be used again; the old token stays refused
    const again = createToken(db, { name: 'ci', scope: 'read' })
    assert.equal(verifyToken(db, token), undefined)
    assert.equal(verifyToken(db, again.token)?.scope, 'read')

    const kinds = listEvents(db)
      .map((e) => e.kind)
      .reverse()
    assert.deepEqual(kinds, ['token.created', 'token.revoked', 'token.created'])
    db.close()
    const bytes = await readFile(file)
    const wal = await readFile(`${file}-wal`).catch(() => Buffer.alloc(0))
    for (const b of [bytes, wal]) {
      assert.equal(b.includes(token), false, 'the token is not in state.db')
      assert.equal(b.includes(again.token), false, 'the token is not in state.db')
    }
  } finally {
    if (db.open) db.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('token names and scopes are checked before they reach state', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-tokens-'))
  const db = openDb(join(dir, 'state.db'))
  try {
    for (const name of ['', 'CI', '../x', 'a b', 'x'.repeat(64), '-x'])
      assert.throws(
        () => createToken(db, { name, scope: 'read' }),
        (e: unknown) => e instanceof GrailError && e.code === 'BAD_NAME',
        name,
      )
    assert.throws(
      () => createToken(db, { name: 'ok', scope: 'admin' as 'read' }),
      (e: unknown) => e instanceof GrailError && e.code === 'BAD_TOKEN_SCOPE',
    )
    assert.deepEqual(listTokens(db), [])
  } finally {
    db.close()
    await rm(dir, { recursive: true, force: true })
  }
})
