import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SseParser } from './sse.js'

test('messages split anywhere across chunks come out whole, comments and unknown fields skipped', () => {
  const stream =
    ': heartbeat\n\nid: 7\nevent: grail\ndata: {"id":7}\n\nretry: 10\r\nid: 8\r\nevent: grail\r\ndata: a\r\ndata: b\r\n\r\n'
  for (let cut = 0; cut <= stream.length; cut++) {
    const p = new SseParser()
    const got = [...p.push(stream.slice(0, cut)), ...p.push(stream.slice(cut))]
    assert.deepEqual(
      got,
      [
        { id: '7', event: 'grail', data: '{"id":7}' },
        { id: '8', event: 'grail', data: 'a\nb' },
      ],
      `cut at ${cut}`,
    )
    assert.equal(p.lastId, '8')
  }
})

test('an event without data is dropped, one without a type is a message, an id with NUL is ignored', () => {
  const p = new SseParser()
  assert.deepEqual(p.push('event: grail\n\ndata:x\n\nid: 1\0\ndata: y\n\n'), [
    { id: undefined, event: 'message', data: 'x' },
    { id: undefined, event: 'message', data: 'y' },
  ])
  assert.equal(p.lastId, undefined)
})
