import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { adminCommand, parseServerStats } from '../../src/proxy/haproxy/runtime-api.js'
import { dataPlaneFiles, routeKey } from '../../src/proxy/haproxy/files.js'
import { type Db, openDb } from '../../src/state/index.js'
import { makeBusyboxRootfs } from '../../test/helpers/busybox-rootfs.js'
import { freePort } from '../../test/helpers/net.js'
import { type CliResult, grail, parseJson, removeDir, tempProject } from '../../test/helpers/project.js'
import { type ServeProcess, startServe } from '../../test/helpers/serve.js'
import { APP_SHELL } from '../rollout/grail.js'

export const SERVICES = ['s1', 's2', 's3']
export const REPLICAS = 10
export const HEALTH_INTERVAL_MS = 1000
export const HEALTH_TIMEOUT_MS = 500

/**
 * The bench's kills are no crash loop: with the default (3 restarts of a release in 10 minutes) a fourth
 * kill of one service would wait out a 30 s backoff, so `crashLoop.restarts` is raised above any
 * BENCH_KILLS. The replacements timed are the same either way.
 */
const spec = (ports: number[]) => `project: servebench
images:
  web:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, ${JSON.stringify(APP_SHELL)}]
services:
${SERVICES.map(
  (name, i) => `  ${name}:
    image: web
    replicas: ${REPLICAS}
    port: 8080
    publish: ${ports[i]}
    healthcheck: { http: /index.html, interval: ${HEALTH_INTERVAL_MS}ms, timeout: ${HEALTH_TIMEOUT_MS}ms }
    rollout: { healthTimeout: 10s, drain: 0s }
    crashLoop: { restarts: 50 }
`,
).join('')}`

interface Instance {
  id: string
  service: string
  health: string
  pid: number | null
  port: number | null
}

interface Status {
  environment: string
  instances: Instance[]
  proxies: Array<{ service: string; pid?: number; keeper?: number }>
}

interface Row {
  id: string
  phase: string
  created_at: string
  updated_at: string
}

/** One SIGKILL of an instance and what followed, in ms after the kill. */
export interface Reaction {
  service: string
  killed: string
  pid: number
  replacement: string
  /** the daemon logged the provider's event of the exit (`provider event`, debug) */
  detectedMs: number | null
  /** the replacement's row was created (instances.created_at) */
  createdMs: number
  /** the replacement's row read `healthy` (polled every 5 ms) */
  healthyMs: number
  /** HAProxy's runtime API (`show stat`, polled every 5 ms) shows the replacement UP and 10 servers UP */
  routedMs: number
  /** instances.created_at → updated_at of the healthy row: container create + start + health gate */
  createToHealthyMs: number
  /** the replacement as `grail status --json` showed it afterwards */
  statusHealth: string
}

function check(res: CliResult, what: string): CliResult {
  if (res.code !== 0) throw new Error(`${what} exited ${res.code}\n${res.stderr}\n${res.stdout}`)
  return res
}

export interface ServedProject {
  dir: string
  serve: ServeProcess
  environment: string
  /** pids of the data plane: HAProxy and its keeper (from `grail status --json` proxies[]) */
  dataPlane: { haproxy: number | undefined; keeper: number | undefined }
  status(): Promise<Status>
  /** SIGKILLs a healthy instance of `service` and times its replacement until healthy and routed. */
  killOne(service: string): Promise<Reaction>
  close(): Promise<void>
}

/**
 * A project of 3 services × 10 busybox httpd instances, each published through the data plane with an
 * HTTP health check every second, deployed with `grail up` and then left to `grail serve` (30 s poll
 * interval: every reaction below comes from the provider's event).
 */
export async function servedProject(o: { serveEnv?: Record<string, string> } = {}): Promise<ServedProject> {
  const ports = await Promise.all(SERVICES.map(() => freePort()))
  const dir = await tempProject(
    { 'grail.yaml': spec(ports), 'site/index.html': 'served\n' },
    'grail-bench-serve-',
  )
  let upped = false
  let serve: ServeProcess | undefined
  let db: Db | undefined
  const cwd = { cwd: dir }
  const close = async (): Promise<void> => {
    db?.close()
    db = undefined
    await serve?.stop()
    if (upped) {
      const res = await grail(['down'], cwd)
      if (res.code !== 0) console.error(`grail down in ${dir} exited ${res.code}: ${res.stderr}`)
    }
    await removeDir(dir)
  }
  try {
    makeBusyboxRootfs(join(dir, 'rootfs.tar'))
    upped = true
    check(await grail(['up'], cwd), 'grail up')
    serve = await startServe(dir, ['--interval', '30s', '--log-level', 'debug'], o.serveEnv)
    const started = serve
    db = openDb(join(dir, '.grail', 'state.db'))
    const status = async () => parseJson<Status>(await grail(['--json', 'status'], cwd))
    const first = await status()
    const environment = first.environment
    const healthy = first.instances.filter((i) => i.health === 'healthy')
    if (healthy.length !== SERVICES.length * REPLICAS)
      throw new Error(`after grail up ${healthy.length} instances are healthy: ${JSON.stringify(first)}`)
    const proxy = first.proxies[0]
    const socket = dataPlaneFiles(join(dir, '.grail', 'dataplane')).socket
    const upServers = async (service: string): Promise<Set<string>> => {
      const key = routeKey(environment, service)
      const csv = await adminCommand(socket, `show stat ${key} 4 -1`).catch(() => '')
      return new Set(
        parseServerStats(csv)
          .filter((s) => s.backend === key && s.status.startsWith('UP'))
          .map((s) => s.server),
      )
    }
    const rows = (service: string, since: string): Row[] =>
      (db as Db)
        .prepare(
          'SELECT id, phase, created_at, updated_at FROM instances WHERE environment = ? AND service = ? AND created_at >= ? ORDER BY created_at',
        )
        .all(environment, service, since) as Row[]
    const phaseOf = (id: string): string | undefined =>
      (
        (db as Db).prepare('SELECT phase FROM instances WHERE id = ?').get(id) as
          | { phase: string }
          | undefined
      )?.phase

    return {
      dir,
      serve: started,
      environment,
      dataPlane: { haproxy: proxy?.pid, keeper: proxy?.keeper },
      status,
      async killOne(service) {
        const before = await status()
        const victim = before.instances.find((i) => i.service === service && i.health === 'healthy' && i.pid)
        if (!victim?.pid)
          throw new Error(`no healthy instance of ${service} with a pid: ${JSON.stringify(before)}`)
        const up = await upServers(service)
        if (up.size !== REPLICAS || !up.has(victim.id))
          throw new Error(`${service}: HAProxy has ${[...up].join(', ')} UP before the kill, not ${REPLICAS}`)
        const linesBefore = started.lines.length
        const killedAt = Date.now()
        const since = new Date(killedAt).toISOString()
        const t0 = performance.now()
        process.kill(victim.pid, 'SIGKILL')
        let replacement: Row | undefined
        let healthyMs: number | undefined
        let routedMs: number | undefined
        while (routedMs === undefined) {
          const now = performance.now() - t0
          if (now > 30_000)
            throw new Error(
              `${service}: ${victim.id} killed, not replaced and routed within 30 s (replacement ${JSON.stringify(replacement)}, healthy at ${healthyMs})\n${started.lines
                .slice(linesBefore)
                .map((l) => JSON.stringify(l))
                .join('\n')}`,
            )
          if (healthyMs === undefined) {
            replacement = rows(service, since).find((r) => r.id !== victim.id)
            if (replacement?.phase === 'healthy') healthyMs = now
          }
          if (replacement !== undefined) {
            const servers = await upServers(service)
            servers.delete(victim.id)
            if (servers.has(replacement.id) && servers.size === REPLICAS) {
              routedMs = performance.now() - t0
              // the row may have turned healthy between the two looks
              if (healthyMs === undefined && phaseOf(replacement.id) === 'healthy') healthyMs = routedMs
            }
          }
          if (routedMs === undefined) await sleep(5)
        }
        if (healthyMs === undefined || replacement === undefined)
          throw new Error(`${service}: routed before its row read healthy`)
        const done = (db as Db)
          .prepare('SELECT created_at, updated_at FROM instances WHERE id = ?')
          .get(replacement.id) as Row
        // settle: the killed instance gone from state and from HAProxy, nothing starting
        for (const until = Date.now() + 20_000; ; await sleep(50)) {
          const gone = phaseOf(victim.id) === 'destroyed'
          const busy = (db as Db)
            .prepare(
              "SELECT COUNT(*) AS n FROM instances WHERE environment = ? AND phase IN ('creating', 'starting', 'draining', 'stopping')",
            )
            .get(environment) as { n: number }
          if (gone && busy.n === 0 && !(await upServers(service)).has(victim.id)) break
          if (Date.now() > until) throw new Error(`${service}: ${victim.id} not cleaned up within 20 s`)
        }
        const after = await status()
        const statusHealth = after.instances.find((i) => i.id === replacement?.id)?.health ?? 'missing'
        const event = started.lines
          .slice(linesBefore)
          .find((l) => l.msg === 'provider event' && String(l.why).includes(`process ${victim.pid} exited`))
        return {
          service,
          killed: victim.id,
          pid: victim.pid,
          replacement: replacement.id,
          detectedMs: event ? Date.parse(String(event.time)) - killedAt : null,
          createdMs: Date.parse(done.created_at) - killedAt,
          healthyMs,
          routedMs,
          createToHealthyMs: Date.parse(done.updated_at) - Date.parse(done.created_at),
          statusHealth,
        }
      },
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}
