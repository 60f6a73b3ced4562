import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import {
  type AddressInfo,
  createServer as createTcpServer,
  type Server as TcpServer,
  type Socket,
} from 'node:net'
import { afterEach, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startProxy, type TrafficProxy } from './index.js'
import { READMIT_PASSES } from './routes.js'
import { send } from './testing.js'
import type { Backend, BackendCheck } from './types.js'

const INTERVAL = 200
/** `health.status` value that makes `/healthz` answer 200 and 503 in turn. */
const ALTERNATE = -1
const cleanups: Array<() => Promise<void> | void> = []

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** An HTTP backend answering its id, whose `/healthz` answers `health.status` (flip it to break it). */
async function flakyBackend(id: string, port = 0): Promise<{ backend: Backend; health: { status: number } }> {
  const health = { status: 200 }
  let flip = false
  const server = createServer((req, res) => {
    if (req.url === '/healthz' && health.status === ALTERNATE) {
      flip = !flip
      return void res.writeHead(flip ? 200 : 503).end()
    }
    if (req.url === '/healthz') return void res.writeHead(health.status).end(String(health.status))
    res.writeHead(200, { 'x-backend': id }).end(id)
  })
  const bound = await listen(server, port)
  cleanups.push(() => close(server))
  const check: BackendCheck = {
    type: 'http',
    path: '/healthz',
    expectStatus: 200,
    port: bound,
    interval: INTERVAL,
    timeout: INTERVAL,
  }
  return { backend: { id, host: '127.0.0.1', port: bound, check }, health }
}

/**
 * Stands in for a SIGSTOPped instance: the kernel still accepts its connections (they sit in the listen
 * backlog of a stopped process), but nothing ever answers. A real socket, not a mock.
 */
async function silentBackend(id: string, withCheck: boolean): Promise<Backend> {
  const sockets = new Set<Socket>()
  const server: TcpServer = createTcpServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.resume()
  })
  const port = await listen(server, 0)
  cleanups.push(() => {
    for (const s of sockets) s.destroy()
    return close(server)
  })
  const check: BackendCheck = {
    type: 'http',
    path: '/healthz',
    expectStatus: 200,
    port,
    interval: INTERVAL,
    timeout: INTERVAL,
  }
  return { id, host: '127.0.0.1', port, ...(withCheck ? { check } : {}) }
}

async function proxyWith(
  backends: Backend[],
  opts: { responseTimeoutMs?: number; waitForBackendMs?: number } = {},
) {
  const events: Array<{ event: string; data: Record<string, unknown> }> = []
  const proxy: TrafficProxy = await startProxy({
    listenHost: '127.0.0.1',
    listenPort: 0,
    mode: 'http',
    log: (event, data) => events.push({ event, data: data as Record<string, unknown> }),
    ...opts,
  })
  cleanups.push(() => proxy.close())
  await proxy.setBackends(backends)
  return { proxy, port: proxy.address.port, events }
}

/** Waits (polling; at most `intervals` check intervals) until `cond` holds; false if it never did. */
async function within(intervals: number, cond: () => boolean): Promise<boolean> {
  const deadline = Date.now() + intervals * INTERVAL
  while (Date.now() < deadline) {
    if (cond()) return true
    await sleep(10)
  }
  return cond()
}

async function answeredBy(port: number, n: number, opts: { method?: string } = {}): Promise<string[]> {
  const replies = await Promise.all(Array.from({ length: n }, () => send(port, opts)))
  for (const r of replies) assert.equal(r.status, 200, `every request succeeds (got ${r.status} ${r.body})`)
  return [...new Set(replies.map((r) => r.body))].sort()
}

test('a backend whose health check answers 500 leaves the rotation, and comes back after two passing probes', async () => {
  const a = await flakyBackend('a')
  const b = await flakyBackend('b')
  const { proxy, port, events } = await proxyWith([a.backend, b.backend])
  assert.deepEqual(await answeredBy(port, 10), ['a', 'b'])
  b.health.status = 500
  // generous slack on a loaded machine: the acceptance is two intervals, measured in a real deployment
  assert.ok(await within(20, () => proxy.ejected().length === 1), 'b is ejected')
  assert.deepEqual(
    proxy.ejected().map((e) => [e.id, e.reason]),
    [['b', 'HTTP 500']],
  )
  assert.deepEqual(await answeredBy(port, 20), ['a'], 'only a answers while b fails its check')
  assert.ok(events.some((e) => e.event === 'eject' && e.data.backend === 'b' && e.data.reason === 'HTTP 500'))
  b.health.status = 200
  assert.ok(await within(20 * READMIT_PASSES, () => proxy.ejected().length === 0), 'b is readmitted')
  assert.ok(events.some((e) => e.event === 'readmit' && e.data.backend === 'b'))
  assert.deepEqual(await answeredBy(port, 10), ['a', 'b'])
})

test('one failed probe then a pass does not readmit: it takes two passes in a row', async () => {
  const a = await flakyBackend('a')
  const { proxy } = await proxyWith([a.backend])
  a.health.status = 503
  assert.ok(await within(20, () => proxy.ejected().length === 1))
  // from now on the probes alternate: pass, fail, pass, fail… never two passes in a row
  a.health.status = ALTERNATE
  await sleep(INTERVAL * 6)
  assert.equal(proxy.ejected()[0]?.id, 'a', 'still ejected')
  a.health.status = 200
  assert.ok(await within(20 * READMIT_PASSES, () => proxy.ejected().length === 0), 'readmitted')
})

test('a backend that accepts but never answers (a stopped process) is ejected by its check, and the GETs waiting on it are answered elsewhere', async () => {
  const ok = await flakyBackend('ok')
  const stopped = await silentBackend('stopped', true)
  const { proxy, port } = await proxyWith([ok.backend, stopped])
  // half of these go to the silent backend first; its check times out, the ejection sends them on
  assert.deepEqual(await answeredBy(port, 20), ['ok'])
  assert.deepEqual(
    proxy.ejected().map((e) => [e.id, e.reason]),
    [['stopped', 'timed out']],
  )
  assert.equal(proxy.stats().failed, 0)
  assert.deepEqual(await answeredBy(port, 20), ['ok'])
})

test('without a check, no response header within the response timeout ejects the backend: a GET is retried, a POST gets 504', async () => {
  const ok = await flakyBackend('ok')
  const stopped = await silentBackend('stopped', false)
  const { proxy, port } = await proxyWith([stopped, ok.backend], { responseTimeoutMs: INTERVAL })
  const post = send(port, { method: 'POST', body: 'x' })
  const got = await post
  if (got.body === 'ok') {
    // round robin sent the POST to the answering backend: send one more, which goes to the silent one
    const again = await send(port, { method: 'POST', body: 'x' })
    assert.equal(again.status, 504)
  } else {
    assert.equal(got.status, 504)
    assert.match(got.body, /gateway timeout/)
  }
  assert.deepEqual(
    proxy.ejected().map((e) => [e.id, e.reason]),
    [['stopped', `no response within ${INTERVAL} ms`]],
  )
  assert.deepEqual(await answeredBy(port, 10), ['ok'], 'the ejected backend takes no new traffic')
})

test('a GET stuck on a backend that stops answering is retried when the response timeout ejects it', async () => {
  const ok = await flakyBackend('ok')
  const stopped = await silentBackend('stopped', false)
  const { proxy, port } = await proxyWith([stopped, ok.backend], { responseTimeoutMs: INTERVAL })
  assert.deepEqual(await answeredBy(port, 6), ['ok'])
  assert.equal(proxy.stats().failed, 0)
  assert.equal(proxy.ejected()[0]?.id, 'stopped')
})

test('a refused connect ejects the backend at once; it is readmitted once it listens again', async () => {
  const a = await flakyBackend('a')
  const b = await flakyBackend('b')
  const { proxy, port, events } = await proxyWith([a.backend, b.backend])
  const bPort = b.backend.port
  // take b down by closing its server (the cleanup list closes it again harmlessly)
  await cleanups[1]?.()
  assert.deepEqual(await answeredBy(port, 10), ['a'])
  assert.deepEqual(
    proxy.ejected().map((e) => [e.id, e.reason]),
    [['b', 'ECONNREFUSED']],
  )
  assert.equal(events.filter((e) => e.event === 'eject').length, 1, 'ejected once, not per request')
  await flakyBackend('b', bPort)
  assert.ok(await within(40, () => proxy.ejected().length === 0), 'b is back')
  assert.deepEqual(await answeredBy(port, 10), ['a', 'b'])
})

test('when every backend fails its check, a request waits for a readmission, then gets 503 naming the ejected backends', async () => {
  const a = await flakyBackend('a')
  const b = await flakyBackend('b')
  const { proxy, port, events } = await proxyWith([a.backend, b.backend], { waitForBackendMs: INTERVAL })
  a.health.status = 500
  b.health.status = 500
  assert.ok(await within(20, () => proxy.ejected().length === 2))
  const r = await send(port)
  assert.equal(r.status, 503)
  assert.match(r.body, /^no healthy backend: all 2 failing their health checks \(a: HTTP 500; b: HTTP 500\)/)
  assert.ok(events.some((e) => e.event === 'all-ejected'))
  // a request that arrives while all are out is served by the first one readmitted within the wait
  const late = await proxyWith([a.backend], { waitForBackendMs: 20 * INTERVAL })
  assert.ok(await within(20, () => late.proxy.ejected().length === 1))
  const pending = send(late.port)
  a.health.status = 200
  const served = await pending
  assert.equal(served.status, 200)
  assert.equal(served.body, 'a')
})

function listen(server: Server | TcpServer, port: number): Promise<number> {
  return new Promise((resolve) =>
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  )
}

function close(server: Server | TcpServer): Promise<void> {
  if (!server.listening) return Promise.resolve()
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  if ('closeAllConnections' in server) server.closeAllConnections()
  return closed
}
