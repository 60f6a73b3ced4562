import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, test } from 'node:test'
import type { HealthCheck } from '../spec/types.js'
import { probeOnce, waitHealthy } from './health.js'
import { probeRun } from './observe-health.js'

const servers: Server[] = []
after(() => {
  for (const s of servers) s.close()
})

async function serve(handler: Parameters<typeof createServer>[1]): Promise<number> {
  const s = createServer(handler)
  servers.push(s)
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  return (s.address() as AddressInfo).port
}

const base = { interval: 20, timeout: 2000, healthyThreshold: 2, unhealthyThreshold: 3, startPeriod: 0 }
const http = (path = '/healthz'): HealthCheck => ({ ...base, type: 'http', path, expectStatus: 200 })

test('http: the status decides, and a closed port is "connection refused"', async () => {
  const port = await serve((req, res) => {
    res.statusCode = req.url === '/healthz' ? 200 : 500
    res.end()
  })
  assert.deepEqual(await probeOnce(http(), { host: '127.0.0.1', port }), { ok: true, detail: 'HTTP 200' })
  assert.deepEqual(await probeOnce(http('/bad'), { host: '127.0.0.1', port }), {
    ok: false,
    detail: 'HTTP 500',
  })
  const closed = await serve(() => {})
  servers.at(-1)?.close()
  await new Promise((r) => setTimeout(r, 20))
  assert.deepEqual(await probeOnce(http(), { host: '127.0.0.1', port: closed }), {
    ok: false,
    detail: 'connection refused',
  })
})

test('tcp and exec checks', async () => {
  const port = await serve((_req, res) => res.end())
  assert.equal((await probeOnce({ ...base, type: 'tcp' }, { host: '127.0.0.1', port })).ok, true)
  const exec = async (argv: string[]) => ({ code: argv[0] === 'true' ? 0 : 1, stdout: '', stderr: '' })
  assert.deepEqual(
    await probeOnce({ ...base, type: 'exec', command: ['true'] }, { host: '', port: 0, exec }),
    { ok: true, detail: 'exit 0' },
  )
  assert.deepEqual(
    await probeOnce({ ...base, type: 'exec', command: ['false'] }, { host: '', port: 0, exec }),
    { ok: false, detail: 'exit 1' },
  )
})

test('the gate passes after healthyThreshold passes in a row', async () => {
  let n = 0
  const port = await serve((_req, res) => {
    res.statusCode = ++n <= 3 ? 503 : 200
    res.end()
  })
  const r = await waitHealthy(http(), { host: '127.0.0.1', port }, { timeoutMs: 2000 })
  assert.deepEqual(r, { healthy: true, probes: 5 })
})

test('the gate fails at its timeout with what the last probe saw, or as soon as the process is gone', async () => {
  const port = await serve((_req, res) => {
    res.statusCode = 500
    res.end()
  })
  const r = await waitHealthy(http(), { host: '127.0.0.1', port }, { timeoutMs: 150 })
  assert.equal(r.healthy, false)
  assert.match(r.healthy ? '' : r.reason, /^not healthy within 150 ms \(last probe: HTTP 500\)$/)
  const gone = await waitHealthy(
    http(),
    { host: '127.0.0.1', port },
    { timeoutMs: 5000, alive: async () => false },
  )
  assert.equal(gone.healthy, false)
  assert.equal(gone.probes, 1)
})

test('a run of probes: one failure is retried, the threshold in a row is unhealthy', async () => {
  let calls = 0
  const port = await serve((_req, res) => {
    calls++
    res.statusCode = calls === 1 ? 503 : 200
    res.end()
  })
  assert.deepEqual(await probeRun(http(), { host: '127.0.0.1', port }), {
    ok: true,
    detail: 'HTTP 200',
    failures: 0,
  })
  assert.equal(calls, 2)
  const gone = await serve((_req, res) => {
    res.statusCode = 404
    res.end()
  })
  assert.deepEqual(await probeRun(http(), { host: '127.0.0.1', port: gone }), {
    ok: false,
    detail: 'HTTP 404',
    failures: 3,
  })
})

test('a run of probes stops at its budget, and failures already recorded count towards the threshold', async () => {
  const port = await serve((_req, res) => {
    res.statusCode = 404
    res.end()
  })
  const target = { host: '127.0.0.1', port }
  assert.deepEqual(await probeRun(http(), target, { budgetMs: 100 }), {
    ok: false,
    detail: 'HTTP 404',
    failures: 1,
  })
  assert.deepEqual(await probeRun(http(), target, { budgetMs: 100, failuresBefore: 2 }), {
    ok: false,
    detail: 'HTTP 404',
    failures: 3,
  })
})
