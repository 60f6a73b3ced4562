import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { openDb } from './db.js'
import { listEvents } from './events.js'
import { acquireLock, releaseLock } from './locks.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

async function freshDb() {
  const dir = await mkdtemp(join(tmpdir(), 'grail-lock-'))
  dirs.push(dir)
  return openDb(join(dir, 'state.db'))
}

test('a second holder fails at once, naming the first', async () => {
  const db = await freshDb()
  acquireLock(db, 'apply', { holder: 'alice' })
  assert.throws(() => acquireLock(db, 'apply', { holder: 'bob', pid: process.pid + 1 }), {
    code: 'LOCKED',
    message: new RegExp(`held by alice \\(pid ${process.pid} on `),
  })
  releaseLock(db, 'apply')
  assert.equal(acquireLock(db, 'apply', { holder: 'bob' }).holder, 'bob')
  db.close()
})

test('a lock whose holder died is taken over and the takeover is recorded', async () => {
  const db = await freshDb()
  const child = spawn(process.execPath, ['-e', ''])
  const deadPid = child.pid as number
  await new Promise((r) => child.on('close', r))
  acquireLock(db, 'apply', { holder: 'crashed', pid: deadPid })
  const me = acquireLock(db, 'apply', { holder: 'next' })
  assert.equal(me.holder, 'next')
  assert.equal(listEvents(db)[0]?.kind, 'lock.stale')
  db.close()
})
