import assert from 'node:assert/strict'
import { Agent } from 'node:http'
import { type AddressInfo, createServer, type Socket } from 'node:net'
import { afterEach, test } from 'node:test'
import { startProxy, type TrafficProxy } from './index.js'
import { send } from './testing.js'

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

/**
 * A raw keep-alive backend. `behaviour(n, onConnection)` decides each request: the nth request overall
 * and the index of the request on its connection (0 for a fresh one): `ok` answers 200 with `id`, `close`
 * closes the connection without a byte, `408` answers "408 Request Timeout" and closes.
 */
async function backend(
  id: string,
  behaviour: (n: number, onConnection: number) => 'ok' | 'close' | '408',
): Promise<{ port: number; requests: () => number }> {
  let n = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    let onConnection = 0
    let buf = ''
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1')
      while (buf.includes('\r\n\r\n')) {
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4)
        const what = behaviour(n++, onConnection++)
        if (what === 'close') socket.destroy()
        else if (what === '408')
          socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 7\r\n\r\ntimeout')
        else
          socket.write(
            `HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nx-backend: ${id}\r\nContent-Length: ${id.length}\r\n\r\n${id}`,
          )
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  )
  return { port: (server.address() as AddressInfo).port, requests: () => n }
}

async function proxyTo(ports: Array<{ id: string; port: number }>): Promise<TrafficProxy> {
  const proxy = await startProxy({ listenHost: '127.0.0.1', listenPort: 0, mode: 'http' })
  cleanup.push(() => proxy.close())
  await proxy.setBackends(ports.map((p) => ({ id: p.id, host: '127.0.0.1', port: p.port })))
  return proxy
}

test('a GET the backend closes without an answer is retried on another backend', async () => {
  const bad = await backend('bad', () => 'close')
  const good = await backend('good', () => 'ok')
  const proxy = await proxyTo([
    { id: 'bad', port: bad.port },
    { id: 'good', port: good.port },
  ])
  for (let i = 0; i < 6; i++) {
    const r = await send(proxy.address.port)
    assert.equal(r.status, 200, `request ${i + 1}: ${r.status} ${r.body}`)
    assert.equal(r.body, 'good')
  }
  assert.ok(bad.requests() >= 3, 'the closing backend was tried')
  assert.equal(proxy.stats().failed, 0)
})

test('a POST the backend may have received is not sent twice: 502', async () => {
  const bad = await backend('bad', () => 'close')
  const good = await backend('good', () => 'ok')
  const proxy = await proxyTo([
    { id: 'bad', port: bad.port },
    { id: 'good', port: good.port },
  ])
  const replies = []
  for (let i = 0; i < 4; i++)
    replies.push((await send(proxy.address.port, { method: 'POST', body: 'x=1' })).status)
  assert.deepEqual(replies.sort(), [200, 200, 502, 502])
  assert.equal(good.requests(), 2, 'each POST reached at most one backend')
})

test('retries of a request every backend closes are bounded: 502', async () => {
  const a = await backend('a', () => 'close')
  const b = await backend('b', () => 'close')
  const proxy = await proxyTo([
    { id: 'a', port: a.port },
    { id: 'b', port: b.port },
  ])
  assert.equal((await send(proxy.address.port)).status, 502)
  assert.equal(a.requests() + b.requests(), 4, 'the first attempt and three more')
})

test('a 408 on a connection kept open since an earlier request is retried on a fresh one', async () => {
  // Like a keep-alive server whose idle timeout fired just as the request arrived on the pooled socket.
  const b = await backend('b', (_n, onConnection) => (onConnection === 0 ? 'ok' : '408'))
  const proxy = await proxyTo([{ id: 'b', port: b.port }])
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  cleanup.push(() => agent.destroy())
  for (let i = 0; i < 4; i++) {
    const r = await send(proxy.address.port, { agent })
    assert.equal(r.status, 200, `request ${i + 1}: ${r.status} ${r.body}`)
  }
})

test('a 408 on a fresh connection is the answer and is passed on', async () => {
  const b = await backend('b', () => '408')
  const proxy = await proxyTo([{ id: 'b', port: b.port }])
  assert.equal((await send(proxy.address.port)).status, 408)
  assert.equal(b.requests(), 1)
})
