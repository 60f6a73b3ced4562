import assert from 'node:assert/strict'
import { Agent } from 'node:http'
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'
import { afterEach, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startProxy, type TrafficProxy } from './index.js'
import { send } from './testing.js'

interface RawBackend {
  server: Server
  port: number
  /** connections accepted, and how many of them have sent no byte yet */
  accepted: () => number
  idle: () => number
}

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

/**
 * A backend like busybox httpd: one response per connection, then it closes (`Connection: close`), or
 * with `keepAlive` a conventional keep-alive server. `dropIdleMs` closes connections that stay silent.
 */
async function rawBackend(
  o: { keepAlive?: boolean; dropIdleMs?: number; timeoutReplyMs?: number } = {},
): Promise<RawBackend> {
  let accepted = 0
  const silent = new Set<Socket>()
  const server = createServer((socket) => {
    accepted++
    silent.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => silent.delete(socket))
    if (o.dropIdleMs !== undefined) {
      const t = setTimeout(() => silent.has(socket) && socket.destroy(), o.dropIdleMs)
      socket.on('close', () => clearTimeout(t))
    }
    if (o.timeoutReplyMs !== undefined) {
      // busybox httpd: "No request appeared within 60 seconds", sent unasked, then the connection ends
      const t = setTimeout(() => {
        if (!silent.has(socket)) return
        socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 7\r\n\r\ntimeout')
      }, o.timeoutReplyMs)
      socket.on('close', () => clearTimeout(t))
    }
    let buf = ''
    socket.on('data', (chunk: Buffer) => {
      silent.delete(socket)
      buf += chunk.toString('latin1')
      while (buf.includes('\r\n\r\n')) {
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4)
        const conn = o.keepAlive ? 'keep-alive' : 'close'
        socket.write(`HTTP/1.1 200 OK\r\nConnection: ${conn}\r\nContent-Length: 2\r\n\r\nok`)
        if (!o.keepAlive) socket.end()
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of silent) s.destroy()
        server.close(() => resolve())
      }),
  )
  return {
    server,
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    idle: () => silent.size,
  }
}

async function proxyTo(port: number): Promise<TrafficProxy> {
  const proxy = await startProxy({ listenHost: '127.0.0.1', listenPort: 0, mode: 'http' })
  cleanup.push(() => proxy.close())
  await proxy.setBackends([{ id: 'b', host: '127.0.0.1', port }])
  return proxy
}

function clientAgent(): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  cleanup.push(() => agent.destroy())
  return agent
}

test('a backend that closes every connection gets one connection opened ahead of the next request', async () => {
  const backend = await rawBackend()
  const proxy = await proxyTo(backend.port)
  const agent = clientAgent()
  for (let i = 0; i < 5; i++) {
    const reply = await send(proxy.address.port, { agent })
    assert.equal(reply.status, 200)
    assert.equal(reply.body, 'ok')
    await sleep(20)
    // after each response one spare connection waits at the backend, silent until a request takes it
    assert.equal(backend.idle(), 1, `a spare waits after request ${i + 1}`)
  }
  // five requests, one spare: the spares served requests 2-5, none was opened in vain
  assert.equal(backend.accepted(), 6)
  assert.equal(proxy.stats().failed, 0)
})

test('a keep-alive backend reuses its pooled connection and gets no spare', async () => {
  const backend = await rawBackend({ keepAlive: true })
  const proxy = await proxyTo(backend.port)
  const agent = clientAgent()
  for (let i = 0; i < 5; i++) assert.equal((await send(proxy.address.port, { agent })).status, 200)
  await sleep(20)
  assert.equal(backend.accepted(), 1)
})

test('a spare the backend drops while idle is not replaced until a request needs one, and costs no failure', async () => {
  const backend = await rawBackend({ dropIdleMs: 30 })
  const proxy = await proxyTo(backend.port)
  const agent = clientAgent()
  for (let i = 0; i < 4; i++) {
    assert.equal((await send(proxy.address.port, { agent })).status, 200)
    await sleep(80) // longer than the backend tolerates an idle connection: the spare is gone
  }
  const accepted = backend.accepted()
  await sleep(200)
  assert.equal(backend.accepted(), accepted, 'no reconnect loop while nothing is requested')
  assert.ok(accepted <= 8, `at most one spare per request (${accepted} connections for 4 requests)`)
  assert.equal(proxy.stats().failed, 0)
})

test('removing the backend closes its spare', async () => {
  const backend = await rawBackend()
  const proxy = await proxyTo(backend.port)
  assert.equal((await send(proxy.address.port, { agent: clientAgent() })).status, 200)
  await sleep(20)
  assert.equal(backend.idle(), 1)
  await proxy.setBackends([])
  await sleep(20)
  assert.equal(backend.idle(), 0)
})

test('a spare the backend answered unasked (a 408 after its idle timeout) is never used for a request', async () => {
  const backend = await rawBackend({ timeoutReplyMs: 50 })
  const proxy = await proxyTo(backend.port)
  const agent = clientAgent()
  for (let i = 0; i < 4; i++) {
    const reply = await send(proxy.address.port, { agent })
    assert.equal(reply.status, 200, `request ${i + 1} got ${reply.status} ${reply.body}`)
    assert.equal(reply.body, 'ok')
    await sleep(150) // past the backend's idle timeout: the spare got a 408 and was closed
  }
  assert.equal(proxy.stats().failed, 0)
})

test('a spare is closed by the proxy after its idle limit, before a slow backend times it out', async () => {
  const backend = await rawBackend()
  const proxy = await startProxy({
    listenHost: '127.0.0.1',
    listenPort: 0,
    mode: 'http',
    spareIdleMs: 100,
  })
  cleanup.push(() => proxy.close())
  await proxy.setBackends([{ id: 'b', host: '127.0.0.1', port: backend.port }])
  assert.equal((await send(proxy.address.port, { agent: clientAgent() })).status, 200)
  await sleep(20)
  assert.equal(backend.idle(), 1, 'a spare waits')
  await sleep(300)
  assert.equal(backend.idle(), 0, 'the proxy closed the spare it kept too long')
  assert.equal((await send(proxy.address.port, { agent: clientAgent() })).status, 200)
})
