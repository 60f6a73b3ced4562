import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { test } from 'node:test'
import { GrailError } from '../../errors.js'
import { appendEvent, createToken, listTokens, openDb, revokeToken } from '../../state/index.js'
import { EventFeed } from '../context.js'
import { authorize, bearerOf } from './auth.js'
import { EventStreams, lastEventIdOf, sseFrame } from './event-stream.js'

const req = (authorization?: string, extra: Record<string, string> = {}) =>
  ({ headers: { ...(authorization === undefined ? {} : { authorization }), ...extra } }) as IncomingMessage

const refused = (code: string) => (e: unknown) => e instanceof GrailError && e.code === code

test('authorize: none, read, write, insecure reads; a refusal writes nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-auth-'))
  const db = openDb(join(dir, 'state.db'))
  try {
    const write = createToken(db, { name: 'w', scope: 'write' }).token
    const read = createToken(db, { name: 'r', scope: 'read' }).token
    const old = createToken(db, { name: 'old', scope: 'write' }).token
    revokeToken(db, 'old')
    const tokens = () => JSON.stringify(listTokens(db))
    const before = tokens()
    const insecure = { insecureRead: false }
    assert.equal(authorize(db, req(), 'none', insecure), null)
    assert.equal(authorize(db, req(), 'read', { insecureRead: true }), null)
    for (const [header, access, code] of [
      [undefined, 'read', 'API_UNAUTHORIZED'],
      [undefined, 'write', 'API_UNAUTHORIZED'],
      ['Bearer', 'read', 'API_UNAUTHORIZED'],
      [`Basic ${write}`, 'write', 'API_UNAUTHORIZED'],
      [`Bearer ${write} extra`, 'write', 'API_UNAUTHORIZED'],
      [`Bearer ${old}`, 'read', 'API_UNAUTHORIZED'],
      [`Bearer ${write.slice(0, -1)}`, 'write', 'API_UNAUTHORIZED'],
      [`Bearer ${read}`, 'write', 'API_FORBIDDEN'],
    ] as const) {
      assert.throws(() => authorize(db, req(header), access, insecure), refused(code), `${header} ${access}`)
      // insecure reads do not open writes
      if (access === 'write')
        assert.throws(() => authorize(db, req(header), access, { insecureRead: true }), refused(code))
    }
    assert.equal(tokens(), before, 'refusals leave the tokens as they were (last use too)')
    assert.equal(authorize(db, req(`Bearer ${read}`), 'read', insecure)?.name, 'r')
    assert.equal(authorize(db, req(`bearer  ${write}`), 'write', insecure)?.name, 'w')
    assert.notEqual(listTokens(db).find((t) => t.name === 'r')?.lastUsedAt, null)
    assert.equal(bearerOf(req()), undefined)
    assert.equal(bearerOf(req('Token abc')), '')
  } finally {
    db.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('server-sent events: frames, Last-Event-ID, catch-up then live, each event once, ended on close', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-sse-'))
  const db = openDb(join(dir, 'state.db'))
  const feed = new EventFeed(db, 20)
  try {
    const e = {
      id: 7,
      at: '2026-01-01T00:00:00.000Z',
      kind: 'x',
      subject: 's',
      actor: 'a',
      data: { n: '1\n2' },
    }
    assert.equal(sseFrame(e), `id: 7\nevent: grail\ndata: ${JSON.stringify(e)}\n\n`)
    assert.equal(sseFrame(e).split('\n').length, 5, 'data with a newline stays on one line')
    assert.equal(lastEventIdOf(req(undefined, { 'last-event-id': '42' }), new URLSearchParams()), 42)
    assert.equal(lastEventIdOf(req(), new URLSearchParams('lastEventId=5')), 5)
    assert.equal(lastEventIdOf(req(undefined, { 'last-event-id': '-1' }), new URLSearchParams()), undefined)
    assert.equal(lastEventIdOf(req(undefined, { 'last-event-id': 'x' }), new URLSearchParams()), undefined)

    for (let i = 1; i <= 3; i++) appendEvent(db, 'before', `e${i}`)
    const out = new PassThrough()
    let text = ''
    out.on('data', (c: Buffer) => {
      text += c.toString()
    })
    const res = Object.assign(out, { writeHead: () => res }) as unknown as ServerResponse
    const streams = new EventStreams()
    streams.open(feed, res, { after: 1, heartbeatMs: 30 })
    appendEvent(db, 'after', 'e4')
    await new Promise((r) => setTimeout(r, 120))
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))
    assert.deepEqual(ids, [2, 3, 4])
    assert.match(text, /^retry: 2000$/m)
    assert.match(text, /^: heartbeat$/m)
    assert.equal(streams.size, 1)
    streams.closeAll()
    assert.equal(streams.size, 0)
    assert.equal(out.writableEnded, true, 'the stream is ended')
  } finally {
    feed.close()
    db.close()
    await rm(dir, { recursive: true, force: true })
  }
})
