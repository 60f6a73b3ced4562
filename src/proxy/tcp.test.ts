import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { afterEach, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startProxy, type TrafficProxy } from './index.js'
import { exchange, startEchoBackend, type TestBackend } from './testing.js'

const backends: TestBackend[] = []
const proxies: TrafficProxy[] = []

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()))
  await Promise.all(backends.splice(0).map((b) => b.stop()))
})

async function setup(ids: string[], opts: { drainTimeoutMs?: number; waitForBackendMs?: number } = {}) {
  const started = await Promise.all(ids.map((id) => startEchoBackend(id)))
  backends.push(...started)
  const proxy = await startProxy({ listenHost: '127.0.0.1', listenPort: 0, mode: 'tcp', ...opts })
  proxies.push(proxy)
  const byId = Object.fromEntries(started.map((b) => [b.backend.id, b]))
  return { proxy, port: proxy.address.port, byId, all: started.map((b) => b.backend) }
}

test('tcp: connections are piped round robin, data and half-close pass through', async () => {
  const { proxy, port, all } = await setup(['a', 'b', 'c'])
  await proxy.setBackends(all)
  const got: string[] = []
  for (let i = 0; i < 6; i++) got.push(await exchange(port, `hello${i}`))
  assert.deepEqual(got, ['a:hello0', 'b:hello1', 'c:hello2', 'a:hello3', 'b:hello4', 'c:hello5'])
  assert.deepEqual(proxy.stats().total, { a: 2, b: 2, c: 2 })
})

test('tcp: a stopped backend still in the set causes no client failure', async () => {
  const { proxy, port, all, byId } = await setup(['a', 'b', 'c'])
  await proxy.setBackends(all)
  await byId.a?.stop()
  const got = await Promise.all(Array.from({ length: 12 }, (_, i) => exchange(port, `m${i}`)))
  for (const [i, g] of got.entries()) assert.match(g, new RegExp(`^[bc]:m${i}$`))
  assert.equal(proxy.stats().failed, 0)
})

test('tcp: with no backend a connection waits for one to appear, and its early bytes are kept', async () => {
  const { proxy, port, all } = await setup(['late'])
  const pending = exchange(port, 'early')
  await sleep(200)
  await proxy.setBackends(all)
  assert.equal(await pending, 'late:early')
})

test('tcp: with no backend for the whole wait the connection is closed', async () => {
  const { proxy, port } = await setup([], { waitForBackendMs: 150 })
  const socket = connect({ host: '127.0.0.1', port })
  socket.on('error', () => {})
  socket.write('x')
  const received: Buffer[] = []
  socket.on('data', (c: Buffer) => received.push(c))
  await new Promise((resolve) => socket.on('close', resolve))
  assert.equal(Buffer.concat(received).length, 0, 'closed without an answer')
  assert.equal(proxy.stats().failed, 1)
})

test('tcp: an open connection to a removed backend keeps working until it closes (drain)', async () => {
  const { proxy, port, byId } = await setup(['old', 'new'])
  const oldB = byId.old?.backend
  const newB = byId.new?.backend
  assert.ok(oldB && newB)
  await proxy.setBackends([oldB])
  let release = (): void => {}
  const later = new Promise<void>((resolve) => {
    release = resolve
  })
  const long = exchange(port, 'one,', later)
  await sleep(100)
  let resolved = false
  const swap = proxy.setBackends([newB]).then((s) => {
    resolved = true
    return s
  })
  assert.equal(await exchange(port, 'fresh'), 'new:fresh', 'new connections go to the new set')
  assert.equal(resolved, false, 'the swap waits for the open connection')
  release()
  assert.equal(await long, 'old:one,')
  assert.deepEqual(await swap, { drained: ['old'], forced: [] })
})

test('tcp: a connection still open at the drain timeout is closed', async () => {
  const { proxy, port, byId } = await setup(['old', 'new'], { drainTimeoutMs: 150 })
  const oldB = byId.old?.backend
  const newB = byId.new?.backend
  assert.ok(oldB && newB)
  await proxy.setBackends([oldB])
  const socket = connect({ host: '127.0.0.1', port })
  const closed = new Promise((resolve) => socket.on('close', resolve))
  socket.on('error', () => {})
  socket.resume()
  await sleep(50)
  assert.deepEqual(await proxy.setBackends([newB]), { drained: ['old'], forced: ['old'] })
  await closed
})
