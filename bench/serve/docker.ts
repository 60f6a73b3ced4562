import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Dockerd, DockerResult } from '../../test/helpers/dockerd.js'
import { HEALTH_CMD } from '../rollout/docker.js'

export const SWARM_SERVICE = 'servebench'
export const RESTART_CONTAINER = 'restartbench'

interface ContainerSummary {
  Id: string
  State: string
  Status: string
}

interface ContainerInfo {
  Id: string
  State: { Running: boolean; Pid: number; StartedAt: string; Health?: { Status: string } }
}

async function ok(p: Promise<DockerResult>, what: string): Promise<string> {
  const res = await p
  if (res.code !== 0) throw new Error(`${what} exited ${res.code}: ${res.stderr.trim()}`)
  return res.stdout.trim()
}

/**
 * A GET of the Engine API on dockerd's socket: a few hundred µs, where the `docker` CLI takes tens of ms
 * a call, so polling it times the daemon rather than the client.
 */
function api<T>(d: Dockerd, path: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: d.socket, path, method: 'GET' }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        if (res.statusCode !== 200) reject(new Error(`GET ${path}: ${res.statusCode} ${body}`))
        else resolve(JSON.parse(body) as T)
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

const filters = (f: Record<string, string[]>): string => encodeURIComponent(JSON.stringify(f))

/** One SIGKILL of a container's process and the time until its successor is running and healthy (ms). */
export interface DockerReaction {
  killed: string
  pid: number
  /** a new container (swarm) or the same one restarted (restart policy) is running */
  runningMs: number
  /** … and its health check passed */
  healthyMs: number
}

/** The swarm service's healthy task containers. */
async function healthyTasks(d: Dockerd): Promise<ContainerSummary[]> {
  return api<ContainerSummary[]>(
    d,
    `/containers/json?filters=${filters({ label: [`com.docker.swarm.service.name=${SWARM_SERVICE}`], health: ['healthy'] })}`,
  )
}

async function runningTasks(d: Dockerd): Promise<ContainerSummary[]> {
  return api<ContainerSummary[]>(
    d,
    `/containers/json?filters=${filters({ label: [`com.docker.swarm.service.name=${SWARM_SERVICE}`], status: ['running'] })}`,
  )
}

async function waitHealthyTasks(d: Dockerd, replicas: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const tasks = await healthyTasks(d)
    if (tasks.length === replicas && (await runningTasks(d)).length === replicas) return
    if (Date.now() > deadline)
      throw new Error(`swarm: ${tasks.length} of ${replicas} tasks healthy after ${timeoutMs} ms`)
    await sleep(100)
  }
}

const healthFlags = (intervalMs: number, timeoutMs: number): string[] => [
  '--health-cmd',
  HEALTH_CMD,
  '--health-interval',
  `${intervalMs}ms`,
  '--health-timeout',
  `${timeoutMs}ms`,
  '--health-retries',
  '3',
]

/**
 * Creates the swarm service: `replicas` tasks of `tag` on host networking, each on BASE + its slot, with
 * the same health check interval as Grail's instances, and waits until every task is healthy. Swarm's
 * restart policy is its default (condition any, delay 5 s); `setRestartDelay` changes it.
 */
export async function createSwarmService(
  d: Dockerd,
  o: { tag: string; replicas: number; intervalMs: number; timeoutMs: number },
): Promise<void> {
  await ok(
    d.docker([
      'service',
      'create',
      '--detach',
      '--quiet',
      '--name',
      SWARM_SERVICE,
      '--replicas',
      String(o.replicas),
      '--network',
      'host',
      '--no-resolve-image',
      '--env',
      'SLOT={{.Task.Slot}}',
      ...healthFlags(o.intervalMs, o.timeoutMs),
      '--stop-grace-period',
      '1s',
      o.tag,
    ]),
    'docker service create',
  )
  await waitHealthyTasks(d, o.replicas, 90_000)
}

/** Sets the service's restart delay (every task is replaced at once) and waits until all are healthy again. */
export async function setRestartDelay(d: Dockerd, replicas: number, delayMs: number): Promise<void> {
  await ok(
    d.docker([
      'service',
      'update',
      '--quiet',
      '--restart-delay',
      `${delayMs}ms`,
      '--update-parallelism',
      '0',
      SWARM_SERVICE,
    ]),
    'docker service update --restart-delay',
  )
  await waitHealthyTasks(d, replicas, 90_000)
}

/**
 * SIGKILLs the host pid of one healthy task's container and times until swarm runs `replicas` healthy
 * tasks again, one of them new; then waits a second for the dead task to settle.
 */
export async function killSwarmTask(d: Dockerd, replicas: number): Promise<DockerReaction> {
  const [victim] = await healthyTasks(d)
  if (!victim) throw new Error('swarm: no healthy task to kill')
  const info = await api<ContainerInfo>(d, `/containers/${victim.Id}/json`)
  const pid = info.State.Pid
  const t0 = performance.now()
  process.kill(pid, 'SIGKILL')
  let runningMs: number | undefined
  for (;;) {
    const now = performance.now() - t0
    if (now > 60_000) throw new Error(`swarm: task ${victim.Id} not replaced within 60 s`)
    if (runningMs === undefined) {
      const running = await runningTasks(d)
      if (running.length === replicas && !running.some((c) => c.Id === victim.Id)) runningMs = now
    }
    const healthy = await healthyTasks(d)
    if (healthy.length === replicas && !healthy.some((c) => c.Id === victim.Id)) {
      const healthyMs = performance.now() - t0
      await sleep(1000)
      return { killed: victim.Id.slice(0, 12), pid, runningMs: runningMs ?? healthyMs, healthyMs }
    }
    await sleep(5)
  }
}

/** A plain container with `--restart=always` and the same health check, on host networking. */
export async function runRestartContainer(
  d: Dockerd,
  o: { tag: string; slot: number; intervalMs: number; timeoutMs: number },
): Promise<void> {
  await ok(
    d.docker([
      'run',
      '--detach',
      '--name',
      RESTART_CONTAINER,
      '--restart=always',
      '--network',
      'host',
      '--env',
      `SLOT=${o.slot}`,
      ...healthFlags(o.intervalMs, o.timeoutMs),
      o.tag,
    ]),
    'docker run --restart=always',
  )
  const deadline = Date.now() + 30_000
  for (;;) {
    const c = await api<ContainerInfo>(d, `/containers/${RESTART_CONTAINER}/json`)
    if (c.State.Health?.Status === 'healthy') return
    if (Date.now() > deadline) throw new Error(`${RESTART_CONTAINER} not healthy within 30 s`)
    await sleep(100)
  }
}

/**
 * dockerd doubles the delay before each restart (from 100 ms) while a container keeps exiting within 10 s
 * of its start, and resets it once one ran longer: the kill waits for that, so that each restart is a
 * first one and not a crash loop's.
 */
const RESTART_RESET_MS = 10_500

/** SIGKILLs the restart container's process and times until dockerd has it running and healthy again. */
export async function killRestartContainer(d: Dockerd): Promise<DockerReaction> {
  const started = await api<ContainerInfo>(d, `/containers/${RESTART_CONTAINER}/json`)
  await sleep(Math.max(0, Date.parse(started.State.StartedAt) + RESTART_RESET_MS - Date.now()))
  const before = await api<ContainerInfo>(d, `/containers/${RESTART_CONTAINER}/json`)
  if (before.State.Health?.Status !== 'healthy') throw new Error(`${RESTART_CONTAINER} is not healthy`)
  const pid = before.State.Pid
  const t0 = performance.now()
  process.kill(pid, 'SIGKILL')
  let runningMs: number | undefined
  for (;;) {
    const now = performance.now() - t0
    if (now > 60_000) throw new Error(`${RESTART_CONTAINER} not running and healthy within 60 s`)
    const c = await api<ContainerInfo>(d, `/containers/${RESTART_CONTAINER}/json`)
    const restarted = c.State.Running && c.State.Pid !== pid && c.State.StartedAt !== before.State.StartedAt
    if (restarted && runningMs === undefined) runningMs = now
    if (restarted && c.State.Health?.Status === 'healthy') {
      const healthyMs = performance.now() - t0
      await sleep(1000)
      return { killed: RESTART_CONTAINER, pid, runningMs: runningMs ?? healthyMs, healthyMs }
    }
    await sleep(5)
  }
}
