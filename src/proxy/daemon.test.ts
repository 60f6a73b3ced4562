import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { Agent } from 'node:http'
import { type AddressInfo, createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { GrailError } from '../errors.js'
import { isAlive, waitForExit } from './process.js'
import { ensureProxy, type ProxyClient, proxyFiles, stopProxy } from './supervisor.js'
import { answered, send, startHttpBackend, type TestBackend } from './testing.js'
import type { Backend } from './types.js'

const run = promisify(execFile)
/** Every daemon pid seen, killed (that exact pid) in `after` if a test left it running. */
const pids = new Set<number>()
const backends: TestBackend[] = []
let root = ''
let dir = ''
let port = 0
let all: Backend[] = []

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const p = (s.address() as AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return p
}

async function ensure(d = dir, p = port): Promise<ProxyClient> {
  const client = await ensureProxy({
    dir: d,
    listenHost: '127.0.0.1',
    listenPort: p,
    mode: 'http',
    drainTimeoutMs: 2_000,
  })
  pids.add(client.pid)
  return client
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'grail-proxyd-'))
  dir = join(root, '.grail', 'proxy', 'prod-web')
  port = await freePort()
  backends.push(...(await Promise.all(['a', 'b', 'c', 'd'].map((id) => startHttpBackend(id)))))
  all = backends.map((b) => b.backend)
})

after(async () => {
  try {
    for (const pid of pids) {
      if (await isAlive(pid)) {
        process.kill(pid, 'SIGKILL')
        await waitForExit(pid, 5_000)
      }
    }
  } finally {
    // backends keep the test process alive: they are stopped even when a check above throws
    await Promise.all(backends.map((b) => b.stop()))
    await rm(root, { recursive: true, force: true })
  }
})

test('the daemon started by one CLI process outlives it and is reused by the next', async () => {
  // A separate node process plays the CLI session that starts the proxy, then exits.
  const script = join(root, 'session.mts')
  const supervisor = new URL('./supervisor.ts', import.meta.url).href
  await writeFile(
    script,
    `import { ensureProxy } from ${JSON.stringify(supervisor)}\n` +
      `const c = await ensureProxy(${JSON.stringify({ dir, listenHost: '127.0.0.1', listenPort: port, mode: 'http', drainTimeoutMs: 2_000 })})\n` +
      'process.stdout.write(String(c.pid))\n',
  )
  const { stdout } = await run(process.execPath, ['--import', import.meta.resolve('tsx'), script])
  const first = Number(stdout)
  pids.add(first)
  assert.ok(first > 0)
  assert.equal(await isAlive(first), true, 'the daemon still runs after the session exited')
  const again = await ensure()
  assert.equal(again.pid, first)
  const twice = await ensure()
  assert.equal(twice.pid, first)
  const status = await twice.status()
  assert.deepEqual(status.listen, { host: '127.0.0.1', port })
  assert.equal(status.pid, first)
  assert.equal((await readFile(join(dir, 'pid'), 'utf8')).trim(), String(first))
})

test('PUT backends routes requests through the listen port round robin', async () => {
  const client = await ensure()
  const a = all[0] as Backend
  const b = all[1] as Backend
  assert.deepEqual(await client.setBackends([a, b]), { drained: [], forced: [] })
  const seen: string[] = []
  for (let i = 0; i < 6; i++) {
    const r = await send(port)
    assert.equal(r.status, 200)
    seen.push(r.body)
  }
  assert.deepEqual(new Set(seen), new Set(['a', 'b']))
  for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i], seen[i - 1], `alternates: ${seen}`)
  assert.deepEqual((await client.status()).backends, [a, b])
  const persisted = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { backends: Backend[] }
  assert.deepEqual(persisted.backends, [a, b])
})

test('a malformed backend list is refused and changes nothing', async () => {
  const client = await ensure()
  const before = (await client.status()).backends
  await assert.rejects(
    client.setBackends([{ id: 'x', host: '127.0.0.1', port: 0 }]),
    (err: unknown) => err instanceof GrailError && err.code === 'PROXY_BAD_BACKENDS',
  )
  assert.deepEqual((await client.status()).backends, before)
})

test('swapping backends under steady load through the daemon fails no request', async (t) => {
  const client = await ensure()
  const [a, b, c, d] = all as [Backend, Backend, Backend, Backend]
  const agent = new Agent({ keepAlive: true, maxSockets: 16 })
  let ok = 0
  const failures: string[] = []
  const seenAfterLast = new Set<string>()
  let lastSwapDone = false
  let stop = false
  const worker = async (): Promise<void> => {
    while (!stop) {
      try {
        const r = await send(port, { path: '/slow?ms=5', agent })
        if (r.status === 200) ok++
        else failures.push(`status ${r.status}: ${r.body}`)
        if (lastSwapDone) seenAfterLast.add(r.body)
      } catch (err) {
        failures.push(String(err))
      }
    }
  }
  const load = Promise.all(Array.from({ length: 16 }, () => worker()))
  const swaps: Backend[][] = [[c, d], [a, c], [b], [d, a, c]]
  // Each swap comes after 100 more answers, however fast the machine is today.
  for (const set of swaps) {
    await answered(() => ok + failures.length, 100)
    const result = await client.setBackends(set)
    assert.deepEqual(result.forced, [])
  }
  lastSwapDone = true
  await answered(() => ok + failures.length, 100)
  stop = true
  await load
  agent.destroy()
  t.diagnostic(`${ok} requests through the daemon across ${swaps.length} swaps`)
  assert.deepEqual(failures, [])
  assert.equal((await client.status()).stats.failed, 0)
  for (const id of seenAfterLast) assert.ok(['d', 'a', 'c'].includes(id), `answered by removed backend ${id}`)
})

test('a daemon killed with SIGKILL is restarted by its keeper at once, on the same socket, with its routes', async () => {
  const old = await ensure()
  const routes = (await old.status()).backends
  const keeper = Number((await readFile(join(dir, 'keeper.pid'), 'utf8')).trim())
  pids.add(keeper)
  assert.equal((await old.status()).supervisor, keeper)
  process.kill(old.pid, 'SIGKILL')
  assert.equal(await waitForExit(old.pid, 5_000), true)
  // No grail call: the keeper holds the listening socket, so this request waits for the new daemon. A
  // new connection: a kept-alive one of the client's pool died with the daemon that had accepted it.
  const r = await send(port, { agent: new Agent({ keepAlive: false }) })
  assert.equal(r.status, 200)
  assert.ok(
    routes.some((b) => b.id === r.body),
    `answered by ${r.body}`,
  )
  const fresh = Number((await readFile(join(dir, 'pid'), 'utf8')).trim())
  pids.add(fresh)
  assert.notEqual(fresh, old.pid)
  const again = await ensure()
  assert.equal(again.pid, fresh, 'the restarted daemon is reused')
  assert.deepEqual((await again.status()).backends, routes)
  assert.equal((await again.status()).supervisor, keeper)
  const events = (await readFile(join(dir, 'proxy.log'), 'utf8')).split('\n').filter(Boolean)
  assert.ok(events.some((l) => l.includes('"event":"daemon-restart"')))
})

test('a daemon whose keeper was killed too is started again by the next ensureProxy, with its routes', async () => {
  const old = await ensure()
  await old.setBackends([all[0] as Backend, all[1] as Backend])
  const routes = (await old.status()).backends
  const keeper = Number((await readFile(join(dir, 'keeper.pid'), 'utf8')).trim())
  process.kill(keeper, 'SIGKILL')
  assert.equal(await waitForExit(keeper, 5_000), true)
  assert.equal((await old.status()).supervisor, null, 'the daemon serves on, unsupervised')
  assert.equal((await send(port, { agent: new Agent({ keepAlive: false }) })).status, 200)
  process.kill(old.pid, 'SIGKILL')
  assert.equal(await waitForExit(old.pid, 5_000), true)
  await assert.rejects(
    send(port, { agent: new Agent({ keepAlive: false }) }),
    'nothing holds the port any more',
  )
  const fresh = await ensure()
  assert.notEqual(fresh.pid, old.pid)
  assert.deepEqual((await fresh.status()).backends, routes)
  assert.notEqual((await fresh.status()).supervisor, null)
  assert.equal((await send(port, { agent: new Agent({ keepAlive: false }) })).status, 200)
})

test('a daemon that serves on after its keeper died is replaced by a supervised one with its routes', async () => {
  const old = await ensure()
  await old.setBackends([all[0] as Backend, all[1] as Backend])
  const routes = (await old.status()).backends
  const keeper = Number((await readFile(join(dir, 'keeper.pid'), 'utf8')).trim())
  process.kill(keeper, 'SIGKILL')
  assert.equal(await waitForExit(keeper, 5_000), true)
  assert.equal((await old.status()).supervisor, null)
  const fresh = await ensure()
  pids.add(fresh.pid)
  assert.notEqual(fresh.pid, old.pid)
  assert.equal(await isAlive(old.pid), false, 'the unsupervised daemon was stopped')
  const status = await fresh.status()
  assert.notEqual(status.supervisor, null)
  if (status.supervisor !== null) pids.add(status.supervisor)
  assert.deepEqual(status.backends, routes)
  assert.equal((await send(port, { agent: new Agent({ keepAlive: false }) })).status, 200)
})

test('a new listen port replaces the daemon and keeps its routes', async () => {
  const d = join(root, 'moved')
  const first = await ensure(d, await freePort())
  await first.setBackends([all[1] as Backend])
  const p2 = await freePort()
  const moved = await ensure(d, p2)
  assert.notEqual(moved.pid, first.pid)
  assert.equal(await isAlive(first.pid), false)
  assert.deepEqual((await moved.status()).listen, { host: '127.0.0.1', port: p2 })
  assert.equal((await send(p2)).body, 'b')
  await stopProxy(d, { graceMs: 5_000 })
})

test('ensureProxy names the port when another process holds it', async () => {
  const holder: Server = createServer()
  const taken = await freePort()
  await new Promise<void>((resolve) => holder.listen(taken, '127.0.0.1', resolve))
  try {
    await assert.rejects(ensure(join(root, 'other'), taken), (err: unknown) => {
      assert.ok(err instanceof GrailError)
      assert.equal(err.code, 'PROXY_PORT_IN_USE')
      assert.match(err.message, new RegExp(`port ${taken}\\b`))
      assert.match(err.hint ?? '', /another public port/)
      return true
    })
  } finally {
    await new Promise<void>((resolve) => holder.close(() => resolve()))
  }
})

test('a directory too long for a unix socket path gets its socket under /tmp', async () => {
  const long = join(root, 'x'.repeat(120), 'prod-web')
  const files = proxyFiles(long)
  assert.ok(Buffer.byteLength(files.socket) < 100)
  const client = await ensure(long, await freePort())
  assert.equal((await client.status()).pid, client.pid)
  assert.equal((await readFile(join(long, 'socket'), 'utf8')).trim(), files.socket)
  await stopProxy(long, { graceMs: 5_000 })
  assert.equal(existsSync(files.socket), false)
  assert.equal(await isAlive(client.pid), false)
})

test('SIGTERM drains traffic in flight, then the daemon exits and logs why', async () => {
  const d = join(root, 'sigterm')
  const p = await freePort()
  const client = await ensure(d, p)
  await client.setBackends([all[0] as Backend])
  const inFlight = send(p, { path: '/slow?ms=300' })
  await sleep(50)
  process.kill(client.pid, 'SIGTERM')
  const r = await inFlight
  assert.equal(r.status, 200)
  assert.equal(r.body, 'a')
  assert.equal(await waitForExit(client.pid, 5_000), true)
  assert.equal(existsSync(join(d, 'control.sock')), false)
  const events = (await readFile(join(d, 'proxy.log'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event?: string; reason?: string })
  assert.ok(events.some((e) => e.event === 'shutdown' && e.reason === 'SIGTERM'))
  assert.ok(events.some((e) => e.event === 'drained'))
  await stopProxy(d)
})

test('stopProxy ends the daemon and its keeper, frees the port and removes its files', async () => {
  const client = await ensure()
  const keeper = Number((await readFile(join(dir, 'keeper.pid'), 'utf8')).trim())
  const stopped = await stopProxy(dir, { graceMs: 5_000 })
  assert.equal(stopped.pid, client.pid)
  assert.equal(await isAlive(client.pid), false)
  assert.equal(await isAlive(keeper), false)
  assert.equal(existsSync(dir), false)
  const probe = createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject)
    probe.listen(port, '127.0.0.1', resolve)
  })
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  // Stopping again finds nothing to stop.
  assert.deepEqual(await stopProxy(dir), {})
})
