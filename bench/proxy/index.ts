// The data plane under load, with every acceptance figure of issue 15 as a PASS/FAIL check: wrk against
// Grail's data plane (whatever `grail up` runs for a published service) and Debian's HAProxy over the same
// 3 instances, side by side in one run, for a keep-alive backend (Node's http server) and for busybox httpd
// (closes each connection); one instance directly as the floor; rolling, blue-green and canary rollouts at
// the highest concurrency across an idle gap longer than the backends' keep-alive timeout; the data plane
// killed under load; an instance that stops answering (SIGSTOP); and the resident memory of the data plane
// for 1 and 20 published services against HAProxy serving the same routes. The tables and the JSON are
// written first; then run() throws when a check failed, so `bench/run.ts proxy` exits 1.
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '../../test/helpers/net.js'
import { makeNodeRootfs } from '../../test/helpers/node-app.js'
import { type CliResult, grail, parseJson, removeDir, tempProject } from '../../test/helpers/project.js'
import { ms, printTable, writeResults } from '../lib.js'

/** BENCH_SMOKE=1: short durations, results in bench/results/proxy-smoke.json (the recorded run stays). */
const SMOKE = process.env.BENCH_SMOKE === '1'
const DEFAULT_DURATION_S = 10
const DURATION_S = Number(process.env.BENCH_DURATION ?? (SMOKE ? 2 : DEFAULT_DURATION_S))
const CONCURRENCIES = (process.env.BENCH_CONCURRENCY ?? '10,50,200').split(',').map(Number)
/** Concurrencies whose Grail rows must meet the throughput and p99 ratios (the others are information). */
const GATED_CONCURRENCIES = [10, 50]
const THREADS = 2
const REPLICAS = 3
/** Node's server closes a connection idle this long; the rollouts pause the load for longer than that. */
const KEEPALIVE_TIMEOUT_MS = 1000
/** The idle gap in the middle of each rollout: no request at all for this long. */
const IDLE_GAP_MS = Number(process.env.BENCH_IDLE_GAP_MS ?? 2500)
/** Load before the gap, counted from the start of `grail apply`. */
const BEFORE_GAP_MS = 2000
/**
 * Passing probes in a row a new instance needs (with the 1 s interval: about 3 s per gate), so that even a
 * rolling rollout lasts well past the gap.
 */
const HEALTHY_THRESHOLD = 3
/**
 * wrk's per-request timeout in the rollout and kill phases: on 2 cores at c=200 even HAProxy has answers
 * near wrk's default of 2 s in steady state (busybox), so a timeout there would count contention, not a
 * lost request; the SIGSTOP phase keeps the default 2 s (a request stuck on the stopped instance).
 */
const LOAD_TIMEOUT_S = Number(process.env.BENCH_LOAD_TIMEOUT ?? 5)
/** Bake of blue-green and canary, so that the gap falls inside the rollout. */
const BAKE = '5s'
/** Healthcheck interval of both services (the SIGSTOP check allows two of them). */
const KA_INTERVAL_MS = 1000
/** Published services of the memory phase. */
const MEMORY_SERVICES = Number(process.env.BENCH_MEMORY_SERVICES ?? 20)
/** Acceptance targets (issue 15). */
const TARGET = { rpsRatio: 0.9, p99Ratio: 1.2, restartMs: 1000, ejectIntervals: 2, memoryRatio: 2 }

type Backend = 'keepalive' | 'busybox'
const BACKENDS: Backend[] = ['keepalive', 'busybox']
const SERVICE: Record<Backend, string> = { keepalive: 'ka', busybox: 'bb' }
const STRATEGIES = ['rolling', 'blue-green', 'canary'] as const
type Strategy = (typeof STRATEGIES)[number]

// Node's http server keeps connections alive (closing them after KEEPALIVE_TIMEOUT_MS idle); the body names
// the instance's port, so the bench sees which instances serve. As PID 1 it must exit on SIGTERM itself.
const SERVER_JS = `const http = require('node:http')
const body = 'hello from ' + (process.env.VERSION || 'v0') + ' on ' + process.env.PORT + '\\n'
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
  res.end(body)
})
server.keepAliveTimeout = ${KEEPALIVE_TIMEOUT_MS}
server.listen(Number(process.env.PORT), '0.0.0.0')
process.on('SIGTERM', () => process.exit(0))
`
const BUSYBOX_SHELL = "trap 'exit 0' TERM; httpd -f -p $PORT -h /srv/www & wait"

const IMAGES = `images:
  node:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: server.js /srv/server.js
      - cmd: [/usr/bin/node, /srv/server.js]
  busybox:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, ${JSON.stringify(BUSYBOX_SHELL)}]
`

interface SpecOptions {
  publish: Record<Backend, number>
  version: Record<Backend, string>
  strategy: Record<Backend, Strategy>
}

const spec = (o: SpecOptions) => `project: proxybench
${IMAGES}services:
${BACKENDS.map(
  (b) => `  ${SERVICE[b]}:
    image: ${b === 'keepalive' ? 'node' : 'busybox'}
    replicas: ${REPLICAS}
    port: 8080
    network: host
    publish: ${o.publish[b]}
    env: { VERSION: ${o.version[b]} }
    healthcheck: { http: /index.html, interval: ${KA_INTERVAL_MS}ms, timeout: 1s, healthyThreshold: ${HEALTHY_THRESHOLD} }
    rollout: { strategy: ${o.strategy[b]}, ${o.strategy[b] === 'rolling' ? 'maxSurge: 1, maxUnavailable: 0' : `bake: ${BAKE}`}, drain: 2s }
`,
).join('')}`

/** The memory phase: `n` busybox services of one instance each, each published on its own port. */
const memorySpec = (ports: number[]) => `project: proxybench
${IMAGES}services:
${ports
  .map(
    (p, i) => `  ${memName(i)}:
    image: busybox
    replicas: 1
    port: 8080
    network: host
    publish: ${p}
    healthcheck: { http: /index.html, interval: 1s, timeout: 1s }
`,
  )
  .join('')}`
const memName = (i: number): string => `m${String(i + 1).padStart(2, '0')}`

function check(res: CliResult, what: string): CliResult {
  if (res.code !== 0) throw new Error(`${what} exited ${res.code}\n${res.stderr}\n${res.stdout}`)
  return res
}

// wrk's own summary has no p99.9; this script prints the figures as one JSON line when wrk ends (also
// when it is stopped with SIGINT).
const WRK_LUA = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
`

interface WrkResult {
  rps: number
  p50: number
  p99: number
  p999: number
  max: number
  requests: number
  /** responses other than 2xx or 3xx */
  non2xx: number
  /** connect + read + write + timeout errors */
  socketErrors: number
  errors: { connect: number; read: number; write: number; timeout: number }
}

const failuresOf = (w: WrkResult): number => w.non2xx + w.socketErrors

interface WrkRun {
  result: Promise<WrkResult>
  /** SIGINT: wrk stops, prints its summary and the Lua done() line. */
  stop(): void
}

/** wrk for `seconds`, or (without) until stop(). */
function startWrk(o: { url: string; c: number; seconds?: number; timeoutS?: number; lua: string }): WrkRun {
  const timeout = o.timeoutS === undefined ? [] : ['--timeout', `${o.timeoutS}s`]
  const child = spawn(
    'wrk',
    [`-t${THREADS}`, `-c${o.c}`, `-d${o.seconds ?? 3600}s`, ...timeout, '--latency', '-s', o.lua, o.url],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  child.stdout.on('data', (c) => {
    out += c
  })
  child.stderr.on('data', (c) => {
    out += c
  })
  const result = (async () => {
    const [code] = (await once(child, 'close')) as [number | null]
    const line = out.split('\n').find((l) => l.startsWith('WRKJSON '))
    if (code !== 0 || !line) throw new Error(`wrk ${o.url} c=${o.c} exited ${code}:\n${out}`)
    const j = JSON.parse(line.slice('WRKJSON '.length)) as Record<string, number>
    const n = (k: string): number => j[k] ?? 0
    return {
      rps: n('requests') / (n('duration_us') / 1e6),
      p50: n('p50_us') / 1000,
      p99: n('p99_us') / 1000,
      p999: n('p999_us') / 1000,
      max: n('max_us') / 1000,
      requests: n('requests'),
      non2xx: n('status'),
      socketErrors: n('connect') + n('read') + n('write') + n('timeout'),
      errors: { connect: n('connect'), read: n('read'), write: n('write'), timeout: n('timeout') },
    }
  })()
  // awaited by the caller; a wrk that fails meanwhile must not be an unhandled rejection
  result.catch(() => {})
  return {
    result,
    stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined)
        process.kill(child.pid, 'SIGINT')
    },
  }
}

const wrk = (o: { url: string; c: number; seconds: number; lua: string }): Promise<WrkResult> =>
  startWrk(o).result

/** Sums two wrk runs of one phase (the load before and after an idle gap). */
function sumWrk(a: WrkResult, b: WrkResult): WrkResult {
  return {
    rps: (a.requests + b.requests) / (a.requests / a.rps + b.requests / b.rps || 1),
    p50: Math.max(a.p50, b.p50),
    p99: Math.max(a.p99, b.p99),
    p999: Math.max(a.p999, b.p999),
    max: Math.max(a.max, b.max),
    requests: a.requests + b.requests,
    non2xx: a.non2xx + b.non2xx,
    socketErrors: a.socketErrors + b.socketErrors,
    errors: {
      connect: a.errors.connect + b.errors.connect,
      read: a.errors.read + b.errors.read,
      write: a.errors.write + b.errors.write,
      timeout: a.errors.timeout + b.errors.timeout,
    },
  }
}

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status)
  if (!m?.[1]) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(m[1])
}

/** The parent of `pid`, from /proc (field 4 of stat, after the parenthesised command name). */
function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
}

interface Haproxy {
  name: string
  pid: number
  ports: Record<string, number>
  stop(): Promise<void>
}

/** HAProxy on its own loopback ports, one frontend per route, roundrobin, keep-alive both sides. */
async function startHaproxy(o: {
  dir: string
  name: string
  nbthread?: number
  routes: Record<string, number[]>
}): Promise<Haproxy> {
  const ports: Record<string, number> = {}
  for (const r of Object.keys(o.routes)) ports[r] = await freePort()
  const cfg = `global
  maxconn 4000
${o.nbthread ? `  nbthread ${o.nbthread}\n` : ''}defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s
${Object.entries(o.routes)
  .map(
    ([r, servers]) => `frontend fe_${r}
  bind 127.0.0.1:${ports[r]}
  default_backend be_${r}
backend be_${r}
  balance roundrobin
${servers.map((p, i) => `  server s${i} 127.0.0.1:${p}\n`).join('')}`,
  )
  .join('')}`
  const file = join(o.dir, `${o.name}.cfg`)
  await writeFile(file, cfg)
  execFileSync('haproxy', ['-c', '-q', '-f', file])
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = once(child, 'exit')
  const pid = child.pid
  if (pid === undefined) throw new Error('haproxy did not start')
  const first = Object.values(ports)[0]
  for (let i = 0; ; i++) {
    try {
      await fetch(`http://127.0.0.1:${first}/index.html`)
      break
    } catch (err) {
      if (i > 100 || child.exitCode !== null) {
        // not returned to the caller's list, so stopped here
        if (child.exitCode === null && child.signalCode === null) {
          process.kill(pid, 'SIGTERM')
          await exited
        }
        throw new Error(`haproxy ${o.name} does not answer: ${err}`)
      }
      await sleep(50)
    }
  }
  return {
    name: o.name,
    pid,
    ports,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(pid, 'SIGTERM')
        await exited
      }
    },
  }
}

interface Status {
  instances: Array<{ id: string; service: string; port: number | null; pid: number | null; health: string }>
  proxies: Array<{
    environment: string
    service: string
    listen: string
    state: string
    pid?: number
    keeper?: number
    detail: string
    ejected?: Array<{ id: string; reason: string; since: string }>
  }>
}

async function status(dir: string): Promise<Status> {
  return parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
}

function healthyInstances(s: Status, service: string): Status['instances'] {
  return s.instances.filter((i) => i.service === service && i.health === 'healthy' && i.port)
}

async function instancePorts(dir: string, service: string): Promise<number[]> {
  const s = await status(dir)
  const ports = healthyInstances(s, service).map((i) => i.port as number)
  if (ports.length !== REPLICAS)
    throw new Error(`${service}: ${ports.length} healthy instances, want ${REPLICAS}: ${JSON.stringify(s)}`)
  return ports.sort((a, b) => a - b)
}

/** The data plane's pid for `service`: `pid` of its item in `grail status --json` proxies[]. */
function proxyOf(s: Status, service: string): Status['proxies'][number] & { pid: number } {
  const p = s.proxies.find((x) => x.service === service)
  if (!p || !Number.isInteger(p.pid) || (p.pid as number) <= 1)
    throw new Error(`no proxy pid for ${service} in grail status: ${JSON.stringify(s.proxies)}`)
  return p as Status['proxies'][number] & { pid: number }
}

/** The pid of the process listening on 127.0.0.1/0.0.0.0 `port` (ss -ltnp), if exactly one. */
function listenerPid(port: number): number | undefined {
  const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' })
  const pids = new Set([...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))
  return pids.size === 1 ? [...pids][0] : undefined
}

/** One GET on a fresh connection (no keep-alive pool): status and body, or the error. */
function freshGet(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { agent: false, headers: { connection: 'close' }, timeout: timeoutMs },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c) => {
          body += c
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** The instance ports that answer on the keep-alive service's published port (its body names the port). */
async function servingPorts(url: string, requests: number): Promise<number[]> {
  const seen = new Set<number>()
  for (let i = 0; i < requests; i++) {
    const r = await freshGet(url, 5000)
    const m = / on (\d+)$/.exec(r.body.trim())
    if (r.status === 200 && m?.[1]) seen.add(Number(m[1]))
  }
  return [...seen].sort((a, b) => a - b)
}

const f0 = (n: number): string => Math.round(n).toLocaleString('en-US')
const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`
const x2 = (n: number): string => `${n.toFixed(2)}×`
const verdict = (pass: boolean): string => (pass ? 'PASS' : 'FAIL')
const sameSet = (a: readonly (string | number)[], b: readonly (string | number)[]): boolean =>
  a.length === b.length && [...a].sort().join() === [...b].sort().join()

interface Check {
  /** issue 15's acceptance point */
  point: number
  check: string
  figure: string
  target: string
  pass: boolean
}

interface RolloutRun {
  backend: Backend
  strategy: Strategy
  c: number
  wrk: WrkResult
  failures: number
  applyMs: number
  /** ms after apply started: load stopped, load resumed */
  gap: { fromMs: number; toMs: number; idleMs: number }
  /** the rollout was still running when the load resumed */
  gapInsideRollout: boolean
  served: string
}

/**
 * `grail apply` while wrk runs at `c`: load from 1 s before apply, stopped BEFORE_GAP_MS after apply
 * started, IDLE_GAP_MS without any request (pooled backend connections idle past the backend's timeout),
 * then load again until 1 s after apply has finished.
 */
async function rolloutUnderLoad(o: { dir: string; url: string; c: number; lua: string }): Promise<{
  wrk: WrkResult
  applyMs: number
  gap: RolloutRun['gap']
  gapInsideRollout: boolean
}> {
  const first = startWrk({ url: o.url, c: o.c, timeoutS: LOAD_TIMEOUT_S, lua: o.lua })
  await sleep(1000)
  const t0 = performance.now()
  let applyEnd: number | undefined
  const apply = grail(['apply'], { cwd: o.dir }).then((r) => {
    applyEnd = performance.now()
    return r
  })
  await Promise.race([sleep(BEFORE_GAP_MS), apply])
  first.stop()
  const a = await first.result
  const gapFrom = performance.now()
  await sleep(IDLE_GAP_MS)
  const gapTo = performance.now()
  const gapInsideRollout = applyEnd === undefined
  const second = startWrk({ url: o.url, c: o.c, timeoutS: LOAD_TIMEOUT_S, lua: o.lua })
  const applied = await apply
  await sleep(1000)
  second.stop()
  const b = await second.result
  check(applied, 'grail apply')
  return {
    wrk: sumWrk(a, b),
    applyMs: (applyEnd as number) - t0,
    gap: { fromMs: gapFrom - t0, toMs: gapTo - t0, idleMs: gapTo - gapFrom },
    gapInsideRollout,
  }
}

interface KillRun {
  c: number
  killedPid: number
  newPid: number
  restartMs: number | null
  attempts: number
  lastError: string
  wrk: WrkResult
  failures: number
  inFlightEstimate: number
  instancesBefore: string[]
  instancesAfter: string[]
  servingBefore: number[]
  servingAfter: number[]
  sameBackends: boolean
}

/** SIGKILL the data plane's pid under wrk -c50; poll with fresh connections every 10 ms until it answers. */
async function killUnderLoad(o: { dir: string; url: string; lua: string }): Promise<KillRun> {
  const c = 50
  const before = await status(o.dir)
  const killed = proxyOf(before, SERVICE.keepalive).pid
  const instancesBefore = healthyInstances(before, SERVICE.keepalive).map((i) => i.id)
  const servingBefore = await servingPorts(o.url, 10 * REPLICAS)
  const load = startWrk({ url: o.url, c, timeoutS: LOAD_TIMEOUT_S, lua: o.lua })
  await sleep(2000)
  process.kill(killed, 'SIGKILL')
  const t0 = performance.now()
  let restartMs: number | null = null
  let attempts = 0
  let lastError = ''
  while (performance.now() - t0 < 30_000) {
    attempts++
    try {
      const r = await freshGet(o.url, 2000)
      if (r.status === 200) {
        restartMs = performance.now() - t0
        break
      }
      lastError = `HTTP ${r.status}`
    } catch (err) {
      lastError = (err as Error).message
    }
    await sleep(10)
  }
  await sleep(2000)
  load.stop()
  const w = await load.result
  const after = await status(o.dir)
  const newPid = proxyOf(after, SERVICE.keepalive).pid
  const instancesAfter = healthyInstances(after, SERVICE.keepalive).map((i) => i.id)
  const servingAfter = restartMs === null ? [] : await servingPorts(o.url, 10 * REPLICAS)
  return {
    c,
    killedPid: killed,
    newPid,
    restartMs,
    attempts,
    lastError,
    wrk: w,
    failures: failuresOf(w),
    inFlightEstimate: c,
    instancesBefore,
    instancesAfter,
    servingBefore,
    servingAfter,
    sameBackends: sameSet(instancesBefore, instancesAfter) && sameSet(servingBefore, servingAfter),
  }
}

interface StopRun {
  c: number
  instance: string
  /** the pid that listens on the instance's port (the one stopped) */
  pid: number
  /** instances[].pid of grail status (the same when Grail reports host pids) */
  statusPid: number
  intervalMs: number
  /** from SIGSTOP to the ejection's `since` (when the data plane took it out) */
  ejectedAfterMs: number | null
  /** from SIGSTOP to the first `grail status --json` that lists it in ejected */
  seenInStatusMs: number | null
  reason: string
  /** from the end of the load (2.5 s after SIGCONT) until status no longer lists it in ejected */
  readmittedAfterMs: number | null
  /** the process was in state T (stopped) after the SIGSTOP */
  processStopped: boolean
  /** a GET straight to the stopped instance answered within 500 ms (it must not) */
  directAnswered: boolean
  /** the instance's health in the last status polled while it was stopped */
  healthInStatus: string
  /** the proxies[] item of the service in the last status polled while it was stopped */
  lastProxy: unknown
  wrk: WrkResult
  failures: number
}

/** SIGSTOP one keep-alive instance under wrk -c10; how soon `grail status --json` lists it in ejected. */
async function stopUnderLoad(o: {
  dir: string
  url: string
  lua: string
  stopped: Set<number>
}): Promise<StopRun> {
  const c = 10
  const inst = healthyInstances(await status(o.dir), SERVICE.keepalive)[0]
  if (!inst || !Number.isInteger(inst.pid) || (inst.pid as number) <= 1)
    throw new Error(`no pid for an instance of ${SERVICE.keepalive} in grail status`)
  const statusPid = inst.pid as number
  // the process that listens on the instance's port (ss -ltnp), which must be the node server
  const pid = listenerPid(inst.port as number)
  if (pid === undefined) throw new Error(`instance ${inst.id}: nothing listens on port ${inst.port}`)
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  if (!cmdline.includes('/srv/server.js'))
    throw new Error(`instance ${inst.id}: pid ${pid} runs ${JSON.stringify(cmdline)}, not the server`)
  const ejectedIn = (s: Status) =>
    s.proxies.find((p) => p.service === SERVICE.keepalive)?.ejected?.find((e) => e.id === inst.id)
  const load = startWrk({ url: o.url, c, lua: o.lua })
  await sleep(1500)
  process.kill(pid, 'SIGSTOP')
  o.stopped.add(pid)
  const stoppedAt = Date.now()
  let seenInStatusMs: number | null = null
  let ejectedAfterMs: number | null = null
  let reason = ''
  await sleep(100)
  const state = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const processStopped = state.slice(state.lastIndexOf(')') + 2).startsWith('T')
  const directAnswered = await freshGet(`http://127.0.0.1:${inst.port}/index.html`, 500).then(
    () => true,
    () => false,
  )
  let healthInStatus = ''
  let lastProxy: unknown
  try {
    while (Date.now() - stoppedAt < 20_000) {
      const s = await status(o.dir)
      healthInStatus = s.instances.find((i) => i.id === inst.id)?.health ?? 'missing'
      lastProxy = s.proxies.find((p) => p.service === SERVICE.keepalive)
      const e = ejectedIn(s)
      if (e) {
        seenInStatusMs = Date.now() - stoppedAt
        ejectedAfterMs = Date.parse(e.since) - stoppedAt
        reason = e.reason
        break
      }
      await sleep(100)
    }
    await sleep(1000)
    // wrk counts a request only once it is answered: a request stuck on the stopped instance is answered
    // after the SIGCONT, later than wrk's 2 s timeout, and so counts as a timeout
    process.kill(pid, 'SIGCONT')
    o.stopped.delete(pid)
    await sleep(2500)
  } finally {
    load.stop()
  }
  const w = await load.result
  const contAt = Date.now()
  let readmittedAfterMs: number | null = null
  while (Date.now() - contAt < 20_000) {
    if (!ejectedIn(await status(o.dir))) {
      readmittedAfterMs = Date.now() - contAt
      break
    }
    await sleep(200)
  }
  return {
    c,
    instance: inst.id,
    pid,
    statusPid,
    intervalMs: KA_INTERVAL_MS,
    ejectedAfterMs,
    seenInStatusMs,
    reason,
    readmittedAfterMs,
    processStopped,
    directAnswered,
    healthInStatus,
    lastProxy,
    wrk: w,
    failures: failuresOf(w),
  }
}

interface MemoryRun {
  services: number
  dataPlanePids: number[]
  dataPlaneKb: number
  keeperPids: number[]
  keeperKb: number
  /** where the keeper pids came from: `keeper` of proxies[], or the daemon's parent */
  keeperSource: string
  totalKb: number
  haproxyKb: number
}

/** The data plane's pid set for `services` and their keepers, as `grail status --json` names them. */
async function memoryOfGrail(dir: string, services: string[]): Promise<Omit<MemoryRun, 'haproxyKb'>> {
  const s = await status(dir)
  const items = services.map((n) => proxyOf(s, n))
  const pids = [...new Set(items.map((p) => p.pid))]
  const keepers = new Set<number>()
  let source = 'keeper of proxies[]'
  for (const p of items) {
    if (Number.isInteger(p.keeper)) keepers.add(p.keeper as number)
    else {
      // today's proxies[] has no keeper: the keeper is the daemon's parent (see src/proxy/keeper.ts)
      const parent = ppidOf(p.pid)
      if (readFileSync(`/proc/${parent}/cmdline`, 'utf8').includes('keeper')) keepers.add(parent)
      source = "the daemon's parent (proxies[] has no keeper)"
    }
  }
  let dataKb = 0
  for (const pid of pids) dataKb += await rssKb(pid)
  let keeperKb = 0
  for (const pid of keepers) keeperKb += await rssKb(pid)
  return {
    services: services.length,
    dataPlanePids: pids,
    dataPlaneKb: dataKb,
    keeperPids: [...keepers],
    keeperKb,
    keeperSource: source,
    totalKb: dataKb + keeperKb,
  }
}

export async function run(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'grail-bench-proxy-'))
  const lua = join(work, 'report.lua')
  await writeFile(lua, WRK_LUA)
  const publish: Record<Backend, number> = { keepalive: await freePort(), busybox: await freePort() }
  const version: Record<Backend, string> = { keepalive: 'v1', busybox: 'v1' }
  const strategy: Record<Backend, Strategy> = { keepalive: 'rolling', busybox: 'rolling' }
  const url = (b: Backend): string => `http://127.0.0.1:${publish[b]}/index.html`
  let dir: string | undefined
  let upped = false
  const haproxies: Haproxy[] = []
  /** instance pids this bench has SIGSTOPped and not yet continued */
  const stopped = new Set<number>()
  const checks: Check[] = []
  try {
    dir = await tempProject(
      {
        'grail.yaml': spec({ publish, version, strategy }),
        'server.js': SERVER_JS,
        'site/index.html': 'hello from busybox\n',
      },
      'grail-bench-proxy-',
    )
    makeNodeRootfs(join(dir, 'rootfs.tar'))
    const cwd = { cwd: dir }
    check(await grail(['build'], cwd), 'grail build')
    upped = true
    check(await grail(['up'], cwd), 'grail up')

    const servers = {
      keepalive: await instancePorts(dir, SERVICE.keepalive),
      busybox: await instancePorts(dir, SERVICE.busybox),
    }
    haproxies.push(await startHaproxy({ dir: work, name: 'haproxy-nbthread1', nbthread: 1, routes: servers }))
    haproxies.push(await startHaproxy({ dir: work, name: 'haproxy-default-threads', routes: servers }))
    const first = await status(dir)
    const grailPid = {
      keepalive: proxyOf(first, SERVICE.keepalive).pid,
      busybox: proxyOf(first, SERVICE.busybox).pid,
    }
    const memory: Record<string, { pid: number; startKb: number; afterKb?: number }> = {}
    for (const b of BACKENDS) memory[`grail ${b}`] = { pid: grailPid[b], startKb: await rssKb(grailPid[b]) }
    for (const h of haproxies) memory[h.name] = { pid: h.pid, startKb: await rssKb(h.pid) }

    // --- 1. throughput and latency, Grail against HAProxy over the same instances ---
    const GRAIL = "Grail's data plane"
    const H1 = 'HAProxy nbthread 1'
    const HD = 'HAProxy default threads'
    const targets = (b: Backend): Array<[string, string]> => [
      ['one instance direct', `http://127.0.0.1:${servers[b][0]}/index.html`],
      [GRAIL, url(b)],
      ...haproxies.map(
        (h) =>
          [h.name === 'haproxy-nbthread1' ? H1 : HD, `http://127.0.0.1:${h.ports[b]}/index.html`] as [
            string,
            string,
          ],
      ),
    ]
    const results: Record<string, Record<string, Record<string, WrkResult>>> = {}
    for (const b of BACKENDS) {
      results[b] = {}
      for (const c of CONCURRENCIES) {
        const byTarget: Record<string, WrkResult> = {}
        for (const [name, u] of targets(b)) {
          await wrk({ url: u, c, seconds: 1, lua }) // warm-up: connections, JIT
          byTarget[name] = await wrk({ url: u, c, seconds: DURATION_S, lua })
        }
        ;(results[b] as Record<string, Record<string, WrkResult>>)[`c${c}`] = byTarget
      }
    }
    const throughputRows: Record<string, string | number>[] = []
    for (const b of BACKENDS) {
      for (const c of CONCURRENCIES) {
        const r = (results[b] as Record<string, Record<string, WrkResult>>)[`c${c}`] as Record<
          string,
          WrkResult
        >
        const direct = r['one instance direct'] as WrkResult
        const hd = r[HD] as WrkResult
        const h1 = r[H1] as WrkResult
        for (const [name, w] of Object.entries(r)) {
          const isGrail = name === GRAIL
          const rpsRatio = w.rps / hd.rps
          const p99Ratio = w.p99 / hd.p99
          const gated = isGrail && GATED_CONCURRENCIES.includes(c)
          const pass = rpsRatio >= TARGET.rpsRatio && p99Ratio <= TARGET.p99Ratio
          if (gated)
            checks.push({
              point: 1,
              check: `${b} c=${c}: requests/s and p99 against HAProxy (default threads)`,
              figure: `${x2(rpsRatio)} requests/s, ${x2(p99Ratio)} p99`,
              target: `≥ ${TARGET.rpsRatio}× requests/s, ≤ ${TARGET.p99Ratio}× p99`,
              pass,
            })
          throughputRows.push({
            backend: b === 'keepalive' ? 'keep-alive (node)' : 'busybox httpd',
            c,
            target: name,
            'requests/s': f0(w.rps),
            p50: ms(w.p50),
            p99: ms(w.p99),
            'p99.9': ms(w.p999),
            'p50 / p99 over direct':
              name === 'one instance direct' ? '-' : `${ms(w.p50 - direct.p50)} / ${ms(w.p99 - direct.p99)}`,
            'rps / p99 vs HAProxy': isGrail ? `${x2(rpsRatio)} / ${x2(p99Ratio)}` : '-',
            'rps vs HAProxy 1t': isGrail ? x2(w.rps / h1.rps) : '-',
            errors: failuresOf(w),
            check: gated ? verdict(pass) : '',
          })
        }
      }
    }

    // --- 2. rolling, blue-green and canary at the highest rate the backend sustains, across an idle gap ---
    // the highest concurrency at which HAProxy (default threads) had no failed request in the throughput
    // phase of this run: beyond it the backend itself drops requests (busybox's listen queue overflows
    // and SYNs are retransmitted past wrk's timeout), through any proxy and directly alike
    const sustained = (b: Backend): number => {
      const ok = CONCURRENCIES.filter(
        (c) =>
          failuresOf(
            (results[b] as Record<string, Record<string, WrkResult>>)[`c${c}`]?.[HD] as WrkResult,
          ) === 0,
      )
      return ok.length === 0 ? Math.min(...CONCURRENCIES) : Math.max(...ok)
    }
    const rollouts: RolloutRun[] = []
    let n = 1
    for (const s of STRATEGIES) {
      for (const b of BACKENDS) {
        n++
        version[b] = `v${n}`
        strategy[b] = s
        await writeFile(join(dir, 'grail.yaml'), spec({ publish, version, strategy }))
        const top = sustained(b)
        const r = await rolloutUnderLoad({ dir, url: url(b), c: top, lua })
        const st = await status(dir)
        const served = (await freshGet(url(b), 5000)).body.trim()
        if (b === 'keepalive' && !served.startsWith(`hello from ${version[b]} `))
          throw new Error(`after the ${s} rollout the data plane served "${served}"`)
        if (healthyInstances(st, SERVICE[b]).length !== REPLICAS)
          throw new Error(`after the ${s} rollout of ${b}: ${JSON.stringify(st)}`)
        const failures = failuresOf(r.wrk)
        rollouts.push({ backend: b, strategy: s, c: top, ...r, failures, served })
        checks.push({
          point: 2,
          check: `${s} rollout of ${b} under wrk -c${top}, idle gap ${ms(r.gap.idleMs)} inside it`,
          figure: `${failures} failed of ${f0(r.wrk.requests)}${r.gapInsideRollout ? '' : ', the gap was not inside the rollout'}`,
          target: '0 failed, the gap inside the rollout',
          pass: failures === 0 && r.gapInsideRollout,
        })
      }
    }

    for (const b of BACKENDS) {
      const m = memory[`grail ${b}`] as { pid: number; startKb: number; afterKb?: number }
      const pid = proxyOf(await status(dir), SERVICE[b]).pid
      m.afterKb = pid === m.pid ? await rssKb(pid) : undefined
      if (pid !== m.pid) console.error(`note: the data plane for ${b} was restarted (${m.pid} → ${pid})`)
    }
    for (const h of haproxies) (memory[h.name] as { afterKb?: number }).afterKb = await rssKb(h.pid)
    for (const h of haproxies.splice(0)) await h.stop()

    // --- 4. kill the data plane under load ---
    const kill = await killUnderLoad({ dir, url: url('keepalive'), lua })
    checks.push({
      point: 4,
      check: 'SIGKILL of the data plane under wrk -c50: answers again on a fresh connection',
      figure: kill.restartMs === null ? 'not within 30 s' : ms(kill.restartMs),
      target: `≤ ${ms(TARGET.restartMs)}`,
      pass: kill.restartMs !== null && kill.restartMs <= TARGET.restartMs,
    })
    checks.push({
      point: 4,
      check: 'after the restart: the same instances serve',
      figure: `instances ${kill.instancesAfter.length}/${kill.instancesBefore.length} same: ${sameSet(kill.instancesBefore, kill.instancesAfter)}, serving ports ${kill.servingAfter.join(',') || '-'} (before ${kill.servingBefore.join(',')})`,
      target: 'same instance set',
      pass: kill.sameBackends,
    })

    // --- 5. an instance that stops answering ---
    const stop = await stopUnderLoad({ dir, url: url('keepalive'), lua, stopped })
    checks.push({
      point: 5,
      check: `SIGSTOP of one instance (healthcheck every ${ms(KA_INTERVAL_MS)}) under wrk -c10: out of rotation`,
      figure:
        stop.ejectedAfterMs === null
          ? 'not ejected within 20 s'
          : `${ms(stop.ejectedAfterMs)} (in grail status after ${ms(stop.seenInStatusMs as number)})`,
      target: `≤ ${ms(TARGET.ejectIntervals * KA_INTERVAL_MS)} (${TARGET.ejectIntervals} intervals)`,
      pass: stop.ejectedAfterMs !== null && stop.ejectedAfterMs <= TARGET.ejectIntervals * KA_INTERVAL_MS,
    })

    // --- 6. resident memory for 1 and MEMORY_SERVICES published services ---
    check(await grail(['down'], cwd), 'grail down')
    upped = false
    const memPorts: number[] = []
    for (let i = 0; i < MEMORY_SERVICES; i++) memPorts.push(await freePort())
    const memoryRuns: MemoryRun[] = []
    for (const count of [1, MEMORY_SERVICES]) {
      const ports = memPorts.slice(0, count)
      await writeFile(join(dir, 'grail.yaml'), memorySpec(ports))
      upped = true
      check(await grail(['up'], cwd), `grail up (${count} services)`)
      const names = ports.map((_, i) => memName(i))
      const st = await status(dir)
      const routes: Record<string, number[]> = {}
      for (const name of names) {
        const inst = healthyInstances(st, name)[0]
        if (!inst) throw new Error(`memory phase: ${name} has no healthy instance: ${JSON.stringify(st)}`)
        routes[name] = [inst.port as number]
      }
      const h = await startHaproxy({ dir: work, name: `haproxy-${count}-routes`, routes })
      haproxies.push(h)
      // every route has served a few requests through both before the reading
      for (const [i, name] of names.entries()) {
        for (let k = 0; k < 5; k++) {
          await freshGet(`http://127.0.0.1:${ports[i]}/index.html`, 5000)
          await freshGet(`http://127.0.0.1:${h.ports[name]}/index.html`, 5000)
        }
      }
      const g = await memoryOfGrail(dir, names)
      memoryRuns.push({ ...g, haproxyKb: await rssKb(h.pid) })
      await h.stop()
      haproxies.splice(haproxies.indexOf(h), 1)
    }
    const mem20 = memoryRuns[memoryRuns.length - 1] as MemoryRun
    checks.push({
      point: 6,
      check: `resident memory of the data plane for ${MEMORY_SERVICES} published services against HAProxy`,
      figure: `${mb(mem20.dataPlaneKb)} vs ${mb(mem20.haproxyKb)}: ${x2(mem20.dataPlaneKb / mem20.haproxyKb)} (with keepers ${mb(mem20.totalKb)})`,
      target: `≤ ${TARGET.memoryRatio}×`,
      pass: mem20.dataPlaneKb <= TARGET.memoryRatio * mem20.haproxyKb,
    })

    // --- the tables ---
    printTable(
      `bench/proxy: wrk -t${THREADS}, ${DURATION_S} s per row, ${REPLICAS} instances per backend, roundrobin; checks against HAProxy with its default threads at c=${GATED_CONCURRENCIES.join(',')}`,
      throughputRows,
    )
    printTable(
      `bench/proxy: rollouts under wrk at the highest concurrency HAProxy sustained without a failure (keep-alive c=${sustained('keepalive')}, busybox c=${sustained('busybox')}), load paused ${ms(IDLE_GAP_MS)} in the middle (backend keep-alive timeout ${ms(KEEPALIVE_TIMEOUT_MS)})`,
      rollouts.map((r) => ({
        backend: r.backend === 'keepalive' ? 'keep-alive (node)' : 'busybox httpd',
        strategy: r.strategy,
        c: r.c,
        requests: f0(r.wrk.requests),
        'grail apply': ms(r.applyMs),
        'idle gap': `${ms(r.gap.fromMs)} → ${ms(r.gap.toMs)}`,
        'non-2xx/3xx': r.wrk.non2xx,
        'connect/read/write/timeout': `${r.wrk.errors.connect}/${r.wrk.errors.read}/${r.wrk.errors.write}/${r.wrk.errors.timeout}`,
        p99: ms(r.wrk.p99),
        max: ms(r.wrk.max),
        check: verdict(r.failures === 0 && r.gapInsideRollout),
      })),
    )
    printTable(
      'bench/proxy: the data plane killed (SIGKILL) under wrk -c50, and an instance stopped (SIGSTOP) under wrk -c10',
      [
        {
          phase: 'SIGKILL data plane',
          'back after': kill.restartMs === null ? '-' : ms(kill.restartMs),
          'polls (10 ms, fresh conn.)': kill.attempts,
          pids: `${kill.killedPid} → ${kill.newPid}`,
          'same instances': String(kill.sameBackends),
          'wrk requests': f0(kill.wrk.requests),
          'failed (non-2xx/c/r/w/t)': `${kill.failures} (${kill.wrk.non2xx}/${kill.wrk.errors.connect}/${kill.wrk.errors.read}/${kill.wrk.errors.write}/${kill.wrk.errors.timeout})`,
          'in flight (est.)': kill.inFlightEstimate,
        },
        {
          phase: `SIGSTOP instance (interval ${ms(KA_INTERVAL_MS)})`,
          'back after':
            stop.ejectedAfterMs === null ? '-' : `ejected after ${ms(stop.ejectedAfterMs)} (${stop.reason})`,
          'polls (10 ms, fresh conn.)': '-',
          pids: String(stop.pid),
          'same instances': '-',
          'wrk requests': f0(stop.wrk.requests),
          'failed (non-2xx/c/r/w/t)': `${stop.failures} (${stop.wrk.non2xx}/${stop.wrk.errors.connect}/${stop.wrk.errors.read}/${stop.wrk.errors.write}/${stop.wrk.errors.timeout})`,
          'in flight (est.)': '-',
        },
      ],
    )
    printTable('bench/proxy: the SIGSTOP phase in detail', [
      {
        instance: stop.instance,
        'pid (listener / status)': `${stop.pid} / ${stop.statusPid}`,
        'process in state T': String(stop.processStopped),
        'answered directly while stopped': String(stop.directAnswered),
        'health in grail status': stop.healthInStatus,
        'seen ejected in status': stop.seenInStatusMs === null ? '-' : ms(stop.seenInStatusMs),
        'readmitted after SIGCONT': stop.readmittedAfterMs === null ? '-' : ms(stop.readmittedAfterMs),
        'wrk requests/s': f0(stop.wrk.rps),
        'wrk max': ms(stop.wrk.max),
        'proxies[] item (last poll)': JSON.stringify(stop.lastProxy),
      },
    ])
    printTable(
      'bench/proxy: resident memory (VmRSS) during the throughput and rollout phases',
      Object.entries(memory).map(([name, m]) => ({
        process: name,
        pid: m.pid,
        start: mb(m.startKb),
        'after the rollouts': m.afterKb === undefined ? 'restarted' : mb(m.afterKb),
      })),
    )
    printTable(
      `bench/proxy: resident memory for 1 and ${MEMORY_SERVICES} published services (busybox, 1 instance each)`,
      memoryRuns.map((m) => ({
        services: m.services,
        'data plane': `${mb(m.dataPlaneKb)} (${m.dataPlanePids.length} pid${m.dataPlanePids.length === 1 ? '' : 's'})`,
        keepers: `${mb(m.keeperKb)} (${m.keeperPids.length})`,
        total: mb(m.totalKb),
        'HAProxy (default threads)': mb(m.haproxyKb),
        'data plane / HAProxy': x2(m.dataPlaneKb / m.haproxyKb),
      })),
    )
    printTable(
      'bench/proxy: acceptance (issue 15)',
      checks.map((c) => ({
        point: c.point,
        check: c.check,
        figure: c.figure,
        target: c.target,
        result: verdict(c.pass),
      })),
    )
    const haproxyVersion = execFileSync('haproxy', ['-v'], { encoding: 'utf8' }).split('\n')[0] ?? ''
    const wrkVersion = (
      execFileSync('sh', ['-c', 'wrk -v 2>&1 || true'], { encoding: 'utf8' }).split('\n')[0] ?? ''
    ).trim()
    const smoke = SMOKE || DURATION_S < DEFAULT_DURATION_S
    const path = await writeResults(smoke ? 'proxy-smoke' : 'proxy', {
      smoke,
      durationSeconds: DURATION_S,
      threads: THREADS,
      concurrencies: CONCURRENCIES,
      replicas: REPLICAS,
      haproxy: haproxyVersion,
      wrk: wrkVersion,
      checks,
      passed: checks.every((c) => c.pass),
      results,
      rollouts,
      kill,
      stop,
      memoryKb: memory,
      memoryServices: memoryRuns,
      notes: [
        "backends: Grail instances (runc) of one project, both services published: Grail's data plane is whatever `grail up` runs for a published service (its pid from `grail status --json` proxies[]); HAProxy is started by the bench on its own loopback ports with the instance ports from `grail --json status`, so both reach the very same instances",
        `keep-alive backend: Node's http server (the host's node binary and its libraries copied into a busybox rootfs), keep-alive on, keepAliveTimeout ${KEEPALIVE_TIMEOUT_MS} ms; busybox httpd closes every connection, so any proxy opens a new backend connection per request there`,
        'HAProxy: mode http, option http-keep-alive (clients and servers), default http-reuse safe, balance roundrobin over the 3 instances, timeouts 5 s connect / 30 s client, server; one process with nbthread 1 (information) and one with the default threads (one per core), which the checks compare against',
        `each row: wrk -t${THREADS} -cC -d${DURATION_S}s --latency after a 1 s warm-up run against the same target; p50/p99/p99.9 from wrk's latency histogram (a Lua done() hook); targets measured one after another, per concurrency`,
        "'one instance direct' is the floor: one instance without any proxy (for busybox a new connection per request)",
        'failed requests = non-2xx/3xx responses + socket errors (connect, read, write, timeout) as wrk counts them',
        `rollouts: an env value (VERSION) of the service changes and \`grail apply\` replaces all ${REPLICAS} instances with the strategy (rolling: maxSurge 1, maxUnavailable 0; blue-green and canary: bake ${BAKE}; drain 2s; health every ${ms(KA_INTERVAL_MS)} with healthyThreshold ${HEALTHY_THRESHOLD}, so each gate takes about ${HEALTHY_THRESHOLD} s) while wrk -c${sustained('keepalive')}/${sustained('busybox')} --timeout ${LOAD_TIMEOUT_S}s runs against the data plane: from 1 s before apply until ${ms(BEFORE_GAP_MS)} after it started, then ${ms(IDLE_GAP_MS)} with no request at all (the backends close idle connections after ${ms(KEEPALIVE_TIMEOUT_MS)}), then again until 1 s after apply ended (wrk stopped by SIGINT); the gap must end before apply does`,
        `kill: SIGKILL of proxies[].pid of the keep-alive service while wrk -c50 --timeout ${LOAD_TIMEOUT_S}s runs; then a GET on a fresh connection every 10 ms (each waits up to 2 s) until one answers 200; same instances = the healthy instance ids in grail status and the instance ports that answer (the body names the port, 30 fresh requests) are the same before and after; in flight at the kill is estimated as the concurrency`,
        `stop: SIGSTOP of the process listening on one keep-alive instance's port (ss -ltnp on instances[].port of grail status, checked to be the node server; instances[].pid is recorded next to it) while wrk -c10 (default timeout 2 s) runs, healthcheck interval ${ms(KA_INTERVAL_MS)}; ejected after = the ejection's since in proxies[].ejected minus the time of the SIGSTOP; seen in status = when a grail status --json (polled every 100 ms) first lists it; SIGCONT 1 s after that (or after 20 s), then wrk runs 2.5 s more, so that a request stuck on the stopped instance is answered late and counts as a timeout (wrk counts only answered requests)`,
        `memory: VmRSS from /proc/PID/status; the data plane = the distinct pids of proxies[] of the published services, keepers = the distinct keeper pids (proxies[].keeper, or the daemon's parent process when status has none), HAProxy (default threads) serving the same routes after 5 requests per route through each; memory phase after \`grail down\` of the throughput project`,
        'wrk, the proxies and the backends share the same cores: every figure includes that contention',
      ],
    })
    console.log(`results: ${path}`)
    const failed = checks.filter((c) => !c.pass)
    if (failed.length > 0)
      throw new Error(
        `bench/proxy: ${failed.length} of ${checks.length} acceptance checks FAIL:\n${failed.map((c) => `  ${c.point}. ${c.check}: ${c.figure} (target ${c.target})`).join('\n')}`,
      )
  } finally {
    for (const pid of stopped) process.kill(pid, 'SIGCONT')
    for (const h of haproxies) await h.stop()
    if (dir) {
      if (upped) {
        const res = await grail(['down'], { cwd: dir })
        if (res.code !== 0) console.error(`grail down in ${dir} exited ${res.code}: ${res.stderr}`)
      }
      await removeDir(dir)
    }
    await rm(work, { recursive: true, force: true })
  }
}
