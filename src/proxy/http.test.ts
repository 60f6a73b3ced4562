import assert from 'node:assert/strict'
import { Agent } from 'node:http'
import { after, afterEach, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startProxy, type TrafficProxy } from './index.js'
import { answered, send, startHttpBackend, type TestBackend } from './testing.js'

const backends: TestBackend[] = []
const proxies: TrafficProxy[] = []
const agents: Agent[] = []

afterEach(async () => {
  for (const a of agents.splice(0)) a.destroy()
  await Promise.all(proxies.splice(0).map((p) => p.close()))
  await Promise.all(backends.splice(0).map((b) => b.stop()))
})
after(async () => {
  await Promise.all(backends.map((b) => b.stop()))
})

async function setup(ids: string[], opts: { drainTimeoutMs?: number; waitForBackendMs?: number } = {}) {
  const started = await Promise.all(ids.map((id) => startHttpBackend(id)))
  backends.push(...started)
  const proxy = await startProxy({ listenHost: '127.0.0.1', listenPort: 0, mode: 'http', ...opts })
  proxies.push(proxy)
  const byId = Object.fromEntries(started.map((b) => [b.backend.id, b]))
  return { proxy, port: proxy.address.port, byId, all: started.map((b) => b.backend) }
}

function keepAlive(maxSockets = Number.POSITIVE_INFINITY): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets })
  agents.push(agent)
  return agent
}

test('requests are spread round robin and carry x-forwarded-for', async () => {
  const { proxy, port, all } = await setup(['a', 'b', 'c'])
  assert.equal(proxy.address.host, '127.0.0.1')
  assert.ok(proxy.address.port > 0, 'port 0 gives a real port')
  await proxy.setBackends(all)
  const agent = keepAlive(1)
  const counts: Record<string, number> = {}
  for (let i = 0; i < 30; i++) {
    const r = await send(port, { agent })
    assert.equal(r.status, 200)
    assert.equal(r.body, r.backend)
    assert.equal(r.xff, '127.0.0.1')
    counts[r.body] = (counts[r.body] ?? 0) + 1
  }
  assert.deepEqual(counts, { a: 10, b: 10, c: 10 }, 'one keep-alive client connection is not pinned')
  assert.deepEqual(proxy.stats().total, { a: 10, b: 10, c: 10 })
  assert.deepEqual(proxy.stats().active, { a: 0, b: 0, c: 0 })
  assert.deepEqual(
    proxy.backends().map((b) => b.id),
    ['a', 'b', 'c'],
  )
})

test('method, path and a streamed body are forwarded', async () => {
  const { proxy, port, all } = await setup(['a'])
  await proxy.setBackends(all)
  const body = 'x'.repeat(200_000)
  const r = await send(port, { method: 'POST', path: '/echo?q=1', body })
  assert.equal(r.status, 200)
  assert.equal(r.body, `a POST ${body}`)
})

test('a swap from set A to set B under load: 0 failed requests, then only B answers', async () => {
  const { proxy, port, all } = await setup(['a1', 'a2', 'a3', 'b1', 'b2', 'b3'])
  const setA = all.slice(0, 3)
  const setB = all.slice(3)
  await proxy.setBackends(setA)
  const agent = keepAlive()
  let stop = false
  let swapped = false
  let ok = 0
  const failures: string[] = []
  const afterSwap = new Set<string>()
  const client = async (): Promise<void> => {
    while (!stop) {
      try {
        const sentAfterSwap = swapped
        const r = await send(port, { agent })
        if (r.status !== 200) failures.push(`status ${r.status}`)
        else ok++
        if (sentAfterSwap) afterSwap.add(r.body)
      } catch (err) {
        failures.push(String(err))
      }
    }
  }
  const clients = Array.from({ length: 20 }, client)
  // 200 answers before the swap and 200 after it, however fast the machine is today
  await answered(() => ok + failures.length, 200)
  // Atomic: every request sent once setBackends was called goes to B, even while A still drains.
  swapped = true
  const swap = await proxy.setBackends(setB)
  // As a rollout does: the drained old instances are stopped while the load goes on.
  await Promise.all(backends.slice(0, 3).map((b) => b.stop()))
  await answered(() => ok + failures.length, 200)
  stop = true
  await Promise.all(clients)
  assert.deepEqual(failures, [])
  assert.deepEqual(swap.drained.sort(), ['a1', 'a2', 'a3'])
  assert.deepEqual(swap.forced, [])
  assert.deepEqual([...afterSwap].sort(), ['b1', 'b2', 'b3'])
  assert.equal(proxy.stats().failed, 0)
})

test('a slow request in flight to a removed backend completes; the swap resolves after it', async () => {
  const { proxy, port, byId } = await setup(['old', 'new'])
  const oldB = byId.old?.backend
  const newB = byId.new?.backend
  assert.ok(oldB && newB)
  await proxy.setBackends([oldB])
  const slow = send(port, { path: '/slow?ms=500' }).then((r) => ({ ...r, at: Date.now() }))
  await sleep(100)
  assert.equal(proxy.stats().active.old, 1)
  const swap = proxy.setBackends([newB]).then((s) => ({ ...s, at: Date.now() }))
  assert.equal((await send(port)).body, 'new', 'new requests go to the new set at once')
  const [r, s] = await Promise.all([slow, swap])
  assert.equal(r.status, 200)
  assert.equal(r.body, 'old')
  assert.deepEqual(s.drained, ['old'])
  assert.deepEqual(s.forced, [])
  assert.ok(s.at >= r.at - 5, 'the swap resolves once the slow request is done')
})

test('traffic still in flight at the drain timeout is closed and reported as forced', async () => {
  const { proxy, port, byId } = await setup(['old', 'new'], { drainTimeoutMs: 200 })
  const oldB = byId.old?.backend
  const newB = byId.new?.backend
  assert.ok(oldB && newB)
  await proxy.setBackends([oldB])
  const hung = send(port, { path: '/hang' })
  await sleep(50)
  const swap = await proxy.setBackends([newB])
  assert.deepEqual(swap, { drained: ['old'], forced: ['old'] })
  assert.equal((await hung).status, 502, 'the client gets a clean 502')
  assert.equal(proxy.stats().failed, 1)
})

test('a stopped backend still in the set causes no client failure (failover)', async () => {
  const { proxy, port, all, byId } = await setup(['a', 'b', 'c'])
  await proxy.setBackends(all)
  const agent = keepAlive()
  await Promise.all(Array.from({ length: 9 }, () => send(port, { agent })))
  await byId.b?.stop()
  const replies = await Promise.all(Array.from({ length: 30 }, () => send(port, { agent })))
  for (const r of replies) assert.equal(r.status, 200)
  assert.ok(replies.every((r) => r.body !== 'b'))
  const posted = await send(port, { method: 'POST', path: '/echo', body: 'payload', agent })
  const posted2 = await send(port, { method: 'POST', path: '/echo', body: 'payload', agent })
  assert.deepEqual([posted.status, posted2.status], [200, 200])
  assert.ok(
    [posted, posted2].every((r) => r.body.endsWith(' POST payload')),
    'a body survives failover',
  )
  assert.equal(proxy.stats().failed, 0)
})

test('with no backend a request waits for one to appear', async () => {
  const { proxy, port, all } = await setup(['late'])
  const pending = send(port)
  await sleep(200)
  await proxy.setBackends(all)
  const r = await pending
  assert.equal(r.status, 200)
  assert.equal(r.body, 'late')
})

test('with no backend for the whole wait a request gets 503', async () => {
  const { proxy, port } = await setup([], { waitForBackendMs: 150 })
  const r = await send(port)
  assert.equal(r.status, 503)
  assert.equal(proxy.stats().failed, 1)
})

test('when every backend refuses the request gets 502 at the end of the wait', async () => {
  const { proxy, port, all, byId } = await setup(['gone'], { waitForBackendMs: 200 })
  await proxy.setBackends(all)
  await byId.gone?.stop()
  const r = await send(port)
  assert.equal(r.status, 502)
})
