// The data plane under load: wrk against Grail's proxy (the supervised daemon of a published service, as
// `grail up` starts it) and Debian's HAProxy over the same 3 instances, side by side in one run, for a
// keep-alive backend (Node's http server) and for busybox httpd (closes each connection); one instance
// directly as the floor; failed requests while `grail apply` replaces every instance at the highest rate;
// and the resident memory of both proxies.
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, mkdirSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { makeBusyboxRootfs } from '../../test/helpers/busybox-rootfs.js'
import { freePort } from '../../test/helpers/net.js'
import { type CliResult, grail, parseJson, removeDir, tempProject } from '../../test/helpers/project.js'
import { ms, printTable, writeResults } from '../lib.js'

const DURATION_S = Number(process.env.BENCH_DURATION ?? 10)
const CONCURRENCIES = (process.env.BENCH_CONCURRENCY ?? '10,50,200').split(',').map(Number)
const THREADS = 2
const REPLICAS = 3
/** wrk runs this long against Grail's proxy while `grail apply` replaces every instance. */
const ROLLOUT_WRK_S = Number(process.env.BENCH_ROLLOUT_DURATION ?? 30)

type Backend = 'keepalive' | 'busybox'
const BACKENDS: Backend[] = ['keepalive', 'busybox']
const SERVICE: Record<Backend, string> = { keepalive: 'ka', busybox: 'bb' }

// Node's http server keeps connections alive by default; as PID 1 it must exit on SIGTERM itself.
const SERVER_JS = `const http = require('node:http')
const body = 'hello from ' + (process.env.VERSION || 'v0') + '\\n'
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
  res.end(body)
})
server.keepAliveTimeout = 65000
server.listen(Number(process.env.PORT), '0.0.0.0')
process.on('SIGTERM', () => process.exit(0))
`
const BUSYBOX_SHELL = "trap 'exit 0' TERM; httpd -f -p $PORT -h /srv/www & wait"

const spec = (o: { ka: number; bb: number; version: Record<Backend, string> }) => `project: proxybench
images:
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
services:
${BACKENDS.map(
  (b) => `  ${SERVICE[b]}:
    image: ${b === 'keepalive' ? 'node' : 'busybox'}
    replicas: ${REPLICAS}
    port: 8080
    network: host
    publish: ${b === 'keepalive' ? o.ka : o.bb}
    env: { VERSION: ${o.version[b]} }
    healthcheck: { http: /index.html, interval: 200ms, timeout: 1s }
    rollout: { strategy: rolling, maxSurge: 1, maxUnavailable: 0, drain: 2s }
`,
).join('')}`

/** A rootfs with busybox plus the host's Node binary and the shared libraries it loads. */
function makeRootfs(dest: string, work: string): void {
  const dir = join(work, 'rootfs')
  const busybox = join(work, 'busybox.tar')
  makeBusyboxRootfs(busybox)
  mkdirSync(dir)
  execFileSync('tar', ['-C', dir, '-xf', busybox])
  const node = process.execPath
  const files = [node]
  for (const line of execFileSync('ldd', [node], { encoding: 'utf8' }).split('\n')) {
    const m = /(\/\S+) \(0x/.exec(line.trim())
    if (m?.[1]) files.push(m[1])
  }
  for (const f of files) {
    const to = join(dir, f === node ? '/usr/bin/node' : f)
    mkdirSync(dirname(to), { recursive: true })
    copyFileSync(f, to)
  }
  execFileSync('chmod', ['755', join(dir, 'usr/bin/node')])
  execFileSync('tar', ['-C', dir, '--numeric-owner', '-cf', dest, '.'])
}

function check(res: CliResult, what: string): CliResult {
  if (res.code !== 0) throw new Error(`${what} exited ${res.code}\n${res.stderr}\n${res.stdout}`)
  return res
}

// wrk's own summary has no p99.9; this script prints the figures as one JSON line when wrk ends.
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

async function wrk(o: { url: string; c: number; seconds: number; lua: string }): Promise<WrkResult> {
  const child = spawn(
    'wrk',
    [`-t${THREADS}`, `-c${o.c}`, `-d${o.seconds}s`, '--latency', '-s', o.lua, o.url],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  child.stdout.on('data', (c) => {
    out += c
  })
  child.stderr.on('data', (c) => {
    out += c
  })
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
}

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status)
  if (!m?.[1]) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(m[1])
}

interface Haproxy {
  name: string
  pid: number
  ports: Record<Backend, number>
  stop(): Promise<void>
}

/** HAProxy on its own loopback ports, one frontend per backend case, roundrobin, keep-alive both sides. */
async function startHaproxy(o: {
  dir: string
  name: string
  nbthread?: number
  servers: Record<Backend, number[]>
}): Promise<Haproxy> {
  const ports = { keepalive: await freePort(), busybox: await freePort() }
  const cfg = `global
  maxconn 4000
${o.nbthread ? `  nbthread ${o.nbthread}\n` : ''}defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s
${BACKENDS.map(
  (b) => `frontend fe_${b}
  bind 127.0.0.1:${ports[b]}
  default_backend be_${b}
backend be_${b}
  balance roundrobin
${o.servers[b].map((p, i) => `  server s${i} 127.0.0.1:${p}\n`).join('')}`,
).join('')}`
  const file = join(o.dir, `${o.name}.cfg`)
  await writeFile(file, cfg)
  execFileSync('haproxy', ['-c', '-q', '-f', file])
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = once(child, 'exit')
  const pid = child.pid
  if (pid === undefined) throw new Error('haproxy did not start')
  for (let i = 0; ; i++) {
    try {
      await fetch(`http://127.0.0.1:${ports.keepalive}/index.html`)
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
  instances: Array<{ service: string; port: number | null; health: string }>
}

async function instancePorts(dir: string, service: string): Promise<number[]> {
  const s = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
  const ports = s.instances
    .filter((i) => i.service === service && i.health === 'healthy' && i.port)
    .map((i) => i.port as number)
  if (ports.length !== REPLICAS)
    throw new Error(`${service}: ${ports.length} healthy instances, want ${REPLICAS}: ${JSON.stringify(s)}`)
  return ports.sort((a, b) => a - b)
}

/** The pid of the proxy daemon of `service`, from the pid file its keeper writes (supervisor.ts). */
async function grailProxyPid(dir: string, service: string): Promise<number> {
  const proxies = join(dir, '.grail', 'proxy')
  const match = (await readdir(proxies)).find((d) => d.endsWith(`-${service}`))
  if (!match) throw new Error(`no proxy directory for ${service} under ${proxies}`)
  return Number((await readFile(join(proxies, match, 'pid'), 'utf8')).trim())
}

const f0 = (n: number): string => Math.round(n).toLocaleString('en-US')
const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`

export async function run(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'grail-bench-proxy-'))
  const lua = join(work, 'report.lua')
  await writeFile(lua, WRK_LUA)
  const publish = { ka: await freePort(), bb: await freePort() }
  const version: Record<Backend, string> = { keepalive: 'v1', busybox: 'v1' }
  let dir: string | undefined
  let upped = false
  const haproxies: Haproxy[] = []
  try {
    dir = await tempProject(
      {
        'grail.yaml': spec({ ...publish, version }),
        'server.js': SERVER_JS,
        'site/index.html': 'hello from busybox\n',
      },
      'grail-bench-proxy-',
    )
    makeRootfs(join(dir, 'rootfs.tar'), work)
    const cwd = { cwd: dir }
    check(await grail(['build'], cwd), 'grail build')
    upped = true
    check(await grail(['up'], cwd), 'grail up')

    const servers = {
      keepalive: await instancePorts(dir, SERVICE.keepalive),
      busybox: await instancePorts(dir, SERVICE.busybox),
    }
    haproxies.push(await startHaproxy({ dir: work, name: 'haproxy-nbthread1', nbthread: 1, servers }))
    haproxies.push(await startHaproxy({ dir: work, name: 'haproxy-default-threads', servers }))
    const grailPid = {
      keepalive: await grailProxyPid(dir, SERVICE.keepalive),
      busybox: await grailProxyPid(dir, SERVICE.busybox),
    }
    const memory: Record<string, { pid: number; startKb: number; afterKb?: number }> = {}
    for (const b of BACKENDS) memory[`grail ${b}`] = { pid: grailPid[b], startKb: await rssKb(grailPid[b]) }
    for (const h of haproxies) memory[h.name] = { pid: h.pid, startKb: await rssKb(h.pid) }

    const targets = (b: Backend): Array<[string, string]> => [
      ['one instance direct', `http://127.0.0.1:${servers[b][0]}/index.html`],
      ["Grail's proxy", `http://127.0.0.1:${b === 'keepalive' ? publish.ka : publish.bb}/index.html`],
      ...haproxies.map(
        (h) =>
          [
            h.name === 'haproxy-nbthread1' ? 'HAProxy nbthread 1' : 'HAProxy default threads',
            `http://127.0.0.1:${h.ports[b]}/index.html`,
          ] as [string, string],
      ),
    ]
    const results: Record<string, Record<string, Record<string, WrkResult>>> = {}
    for (const b of BACKENDS) {
      results[b] = {}
      for (const c of CONCURRENCIES) {
        const byTarget: Record<string, WrkResult> = {}
        for (const [name, url] of targets(b)) {
          await wrk({ url, c, seconds: 1, lua }) // warm-up: connections, JIT
          byTarget[name] = await wrk({ url, c, seconds: DURATION_S, lua })
        }
        ;(results[b] as Record<string, Record<string, WrkResult>>)[`c${c}`] = byTarget
      }
    }

    // --- failed requests while `grail apply` replaces every instance, at the highest concurrency ---
    const top = Math.max(...CONCURRENCIES)
    const rollouts: Record<string, { wrk: WrkResult; applyMs: number; served: string; c: number }> = {}
    for (const b of BACKENDS) {
      const url = `http://127.0.0.1:${b === 'keepalive' ? publish.ka : publish.bb}/index.html`
      version[b] = 'v2'
      await writeFile(join(dir, 'grail.yaml'), spec({ ...publish, version }))
      const load = wrk({ url, c: top, seconds: ROLLOUT_WRK_S, lua })
      // awaited below; a wrk that fails while apply runs must not be an unhandled rejection meanwhile
      load.catch(() => {})
      await sleep(2000)
      const t0 = performance.now()
      const applied = await grail(['apply'], cwd)
      const applyMs = performance.now() - t0
      const result = await load
      check(applied, 'grail apply')
      if (applyMs > (ROLLOUT_WRK_S - 3) * 1000)
        throw new Error(`grail apply took ${ms(applyMs)}, longer than wrk ran around it`)
      const s = parseJson<Status>(await grail(['--json', 'status'], cwd))
      const served = (await (await fetch(url)).text()).trim()
      if (b === 'keepalive' && served !== 'hello from v2')
        throw new Error(`after the rollout the proxy served "${served}"`)
      if (s.instances.filter((i) => i.service === SERVICE[b] && i.health === 'healthy').length !== REPLICAS)
        throw new Error(`after the rollout: ${JSON.stringify(s)}`)
      rollouts[b] = { wrk: result, applyMs, served, c: top }
    }

    for (const b of BACKENDS) {
      const m = memory[`grail ${b}`] as { pid: number; startKb: number; afterKb?: number }
      const pid = await grailProxyPid(dir, SERVICE[b])
      if (pid !== m.pid)
        throw new Error(`Grail's proxy for ${b} was restarted during the run (${m.pid} → ${pid})`)
      m.afterKb = await rssKb(pid)
    }
    for (const h of haproxies) (memory[h.name] as { afterKb?: number }).afterKb = await rssKb(h.pid)

    // --- the table ---
    const rows: Record<string, string | number>[] = []
    for (const b of BACKENDS) {
      for (const c of CONCURRENCIES) {
        const r = (results[b] as Record<string, Record<string, WrkResult>>)[`c${c}`] as Record<
          string,
          WrkResult
        >
        const direct = r['one instance direct'] as WrkResult
        const g = r["Grail's proxy"] as WrkResult
        const h1 = r['HAProxy nbthread 1'] as WrkResult
        for (const [name, w] of Object.entries(r)) {
          const vsH1 = name === "Grail's proxy" ? `${(w.rps / h1.rps).toFixed(2)}×` : '-'
          rows.push({
            backend: b === 'keepalive' ? 'keep-alive (node)' : 'busybox httpd',
            c: c,
            target: name,
            'requests/s': f0(w.rps),
            p50: ms(w.p50),
            p99: ms(w.p99),
            'p99.9': ms(w.p999),
            'p50 / p99 over direct':
              name === 'one instance direct' ? '-' : `${ms(w.p50 - direct.p50)} / ${ms(w.p99 - direct.p99)}`,
            'rps vs HAProxy 1t': vsH1,
            'p99 vs HAProxy 1t': name === "Grail's proxy" ? `${(g.p99 / h1.p99).toFixed(2)}×` : '-',
            errors: w.non2xx + w.socketErrors,
          })
        }
      }
    }
    printTable(
      `bench/proxy: wrk -t${THREADS}, ${DURATION_S} s per row, ${REPLICAS} instances per backend, roundrobin`,
      rows,
    )
    printTable(
      `bench/proxy: Grail's proxy while \`grail apply\` replaces all ${REPLICAS} instances (wrk -c${top}, ${ROLLOUT_WRK_S} s)`,
      BACKENDS.map((b) => {
        const r = rollouts[b] as { wrk: WrkResult; applyMs: number }
        return {
          backend: b === 'keepalive' ? 'keep-alive (node)' : 'busybox httpd',
          requests: f0(r.wrk.requests),
          'requests/s': f0(r.wrk.rps),
          'grail apply': ms(r.applyMs),
          'non-2xx/3xx': r.wrk.non2xx,
          'socket errors': r.wrk.socketErrors,
          'connect/read/write/timeout': `${r.wrk.errors.connect}/${r.wrk.errors.read}/${r.wrk.errors.write}/${r.wrk.errors.timeout}`,
          p99: ms(r.wrk.p99),
          max: ms(r.wrk.max),
        }
      }),
    )
    printTable(
      'bench/proxy: resident memory (VmRSS)',
      Object.entries(memory).map(([name, m]) => ({
        process: name,
        pid: m.pid,
        start: mb(m.startKb),
        'after the run': mb(m.afterKb ?? 0),
      })),
    )
    const haproxyVersion = execFileSync('haproxy', ['-v'], { encoding: 'utf8' }).split('\n')[0] ?? ''
    const wrkVersion = (
      execFileSync('sh', ['-c', 'wrk -v 2>&1 || true'], { encoding: 'utf8' }).split('\n')[0] ?? ''
    ).trim()
    const path = await writeResults('proxy', {
      durationSeconds: DURATION_S,
      threads: THREADS,
      concurrencies: CONCURRENCIES,
      replicas: REPLICAS,
      haproxy: haproxyVersion,
      wrk: wrkVersion,
      results,
      rollouts,
      memoryKb: memory,
      notes: [
        "backends: Grail instances (runc) of one project, both services published: Grail's proxy is each service's supervised daemon as `grail up` starts it; HAProxy is started by the bench on its own loopback ports with the instance ports from `grail --json status`, so both proxies reach the very same instances",
        "keep-alive backend: Node's http server (the host's node binary and its libraries copied into a busybox rootfs), keep-alive on; busybox httpd closes every connection, so any proxy opens a new backend connection per request there",
        'HAProxy: mode http, option http-keep-alive (clients and servers), default http-reuse safe, balance roundrobin over the 3 instances, timeouts 5 s connect / 30 s client, server; one process with nbthread 1 and one with the default threads (one per core)',
        `each row: wrk -t${THREADS} -cC -d${DURATION_S}s --latency after a 1 s warm-up run against the same target; p50/p99/p99.9 from wrk's latency histogram (a Lua done() hook); targets measured one after another, per concurrency`,
        "'one instance direct' is the floor: one instance without any proxy (for busybox a new connection per request)",
        'errors = non-2xx/3xx responses + socket errors (connect, read, write, timeout) as wrk counts them',
        `rollout: an env value (VERSION) of the service changes and \`grail apply\` replaces all ${REPLICAS} instances (rolling, maxSurge 1, maxUnavailable 0, drain 2s, health every 200 ms) while wrk -c${top} runs ${ROLLOUT_WRK_S} s against Grail's proxy; apply starts 2 s after wrk`,
        'memory: VmRSS from /proc/PID/status; Grail: the daemon pid its keeper writes to .grail/proxy/<env>-<service>/pid, one daemon per published service; HAProxy: one process serving both frontends',
        'wrk, the proxies and the backends share the same cores: every figure includes that contention',
      ],
    })
    console.log(`results: ${path}`)
  } finally {
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
