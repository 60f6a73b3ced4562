// `grail serve` reacting to a SIGKILLed instance (3 services × 10 busybox httpd, each published through the
// data plane with an HTTP health check every second) until its replacement is healthy and routed, against a
// one-node docker swarm replacing a killed task and dockerd's `--restart=always` restarting a killed
// container, in the same run; and the daemon's CPU and memory at idle against dockerd's. The tables and
// the JSON are written first; then run() throws when a check failed, so `bench/run.ts serve` exits 1.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { HealthCheck } from '../../src/spec/types.js'
import { makeBusyboxRootfs } from '../../test/helpers/busybox-rootfs.js'
import { type Dockerd, startDockerd } from '../../test/helpers/dockerd.js'
import { type Measurement, ms, printTable, summarize, writeResults } from '../lib.js'
import { timeApp } from '../rollout/app.js'
import { prepareSwarm } from '../rollout/docker.js'
import {
  createSwarmService,
  type DockerReaction,
  killRestartContainer,
  killSwarmTask,
  RESTART_CONTAINER,
  runRestartContainer,
  setRestartDelay,
  SWARM_SERVICE,
} from './docker.js'
import {
  HEALTH_INTERVAL_MS,
  HEALTH_TIMEOUT_MS,
  type Reaction,
  REPLICAS,
  SERVICES,
  type ServedProject,
  servedProject,
} from './grail.js'
import { childrenOf, commOf, type IdleSample, sampleIdle } from './proc.js'

/** Kills per tool (Grail: round robin over the services). */
const KILLS = Number(process.env.BENCH_KILLS ?? 6)
/** Length of each idle window, in seconds. */
// two of the daemon's 30 s intervals: the window holds as many full passes as a longer one would
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 60)
/** Port base of the docker tasks: slot n listens on BASE + n, the restart container on BASE + 0. */
const DOCKER_PORT_BASE = 24000
/** Acceptance targets (issue 11, point 7). */
const TARGET = { daemonShareMs: 2000, idleCpuPct: 1 }

const CHECK: HealthCheck = {
  type: 'http',
  path: '/index.html',
  expectStatus: 200,
  interval: HEALTH_INTERVAL_MS,
  timeout: HEALTH_TIMEOUT_MS,
  healthyThreshold: 1,
  unhealthyThreshold: 3,
  startPeriod: 0,
}

interface Check {
  check: string
  figure: string
  target: string
  pass: boolean
}

const verdict = (pass: boolean): string => (pass ? 'PASS' : 'FAIL')
const pct = (n: number): string => `${n.toFixed(2)} %`
const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`
const medMax = (m: Measurement): string => `${ms(m.median)} / ${ms(m.max)}`

export async function run(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'grail-bench-serve-'))
  let project: ServedProject | undefined
  let d: Dockerd | undefined
  try {
    const rootfs = makeBusyboxRootfs(join(work, 'bb.tar'))
    const www = join(work, 'www')
    await mkdir(www)
    await writeFile(join(www, 'index.html'), 'app\n')
    const app = await timeApp({ www, check: CHECK, runs: 5 })
    const appRaw = summarize(app.rawMs)
    const appGated = summarize(app.gatedMs)

    // --- Grail: grail up, grail serve, idle, then SIGKILLs round robin over the services ---
    project = await servedProject()
    // the daemon's start out of the idle window: its first patch check done (logged at debug level
    // once the start's passes ran), then 10 s for what a start leaves (lazy modules, the JIT, GC)
    await project.serve.waitForLine(
      (l) => l.msg === 'patch policy checked' || l.msg === 'patch policy failed',
      60_000,
    )
    await sleep(10_000)
    const grailProcs: Record<string, number> = { 'grail serve': project.serve.pid }
    if (project.dataPlane.haproxy) grailProcs['HAProxy (data plane)'] = project.dataPlane.haproxy
    if (project.dataPlane.keeper) grailProcs['data plane keeper'] = project.dataPlane.keeper
    const linesBeforeIdle = project.serve.lines.length
    const grailIdle = await sampleIdle(grailProcs, IDLE_S)
    const passesInIdle = project.serve.lines
      .slice(linesBeforeIdle)
      .filter((l) => l.msg === 'reconciled').length
    const reactions: Reaction[] = []
    for (let i = 0; i < KILLS; i++) {
      reactions.push(await project.killOne(SERVICES[i % SERVICES.length] as string))
      await sleep(1000)
    }
    const trouble = project.serve.lines.filter((l) => Number(l.level) >= 40)
    await project.close()
    project = undefined

    // --- docker: a private dockerd, a one-node swarm, a service of 10 tasks, a --restart=always container ---
    d = await startDockerd({ name: 'serve' })
    const swarm = await prepareSwarm(d, { work, rootfs, bases: [DOCKER_PORT_BASE] })
    const tag = swarm.tags[0] as string
    await createSwarmService(d, {
      tag,
      replicas: REPLICAS,
      intervalMs: HEALTH_INTERVAL_MS,
      timeoutMs: HEALTH_TIMEOUT_MS,
    })
    await runRestartContainer(d, {
      tag,
      slot: 0,
      intervalMs: HEALTH_INTERVAL_MS,
      timeoutMs: HEALTH_TIMEOUT_MS,
    })
    await sleep(3000)
    const dockerProcs: Record<string, number> = { dockerd: d.pid }
    for (const pid of childrenOf(d.pid)) if (commOf(pid) === 'containerd') dockerProcs.containerd = pid
    const dockerIdle = await sampleIdle(dockerProcs, IDLE_S)
    const swarmDefault: DockerReaction[] = []
    for (let i = 0; i < KILLS; i++) swarmDefault.push(await killSwarmTask(d, REPLICAS))
    await setRestartDelay(d, REPLICAS, 0)
    const swarmNoDelay: DockerReaction[] = []
    for (let i = 0; i < KILLS; i++) swarmNoDelay.push(await killSwarmTask(d, REPLICAS))
    const restarts: DockerReaction[] = []
    for (let i = 0; i < KILLS; i++) restarts.push(await killRestartContainer(d))

    // --- figures ---
    const healthy = summarize(reactions.map((r) => r.healthyMs))
    const routed = summarize(reactions.map((r) => r.routedMs))
    const detected = reactions.every((r) => r.detectedMs !== null)
      ? summarize(reactions.map((r) => r.detectedMs as number))
      : undefined
    const created = summarize(reactions.map((r) => r.createdMs))
    const createToHealthy = summarize(reactions.map((r) => r.createToHealthyMs))
    const healthyToRouted = summarize(reactions.map((r) => r.routedMs - r.healthyMs))
    const sw0 = summarize(swarmDefault.map((r) => r.healthyMs))
    const sw0Running = summarize(swarmDefault.map((r) => r.runningMs))
    const sw = summarize(swarmNoDelay.map((r) => r.healthyMs))
    const swRunning = summarize(swarmNoDelay.map((r) => r.runningMs))
    const rs = summarize(restarts.map((r) => r.healthyMs))
    const rsRunning = summarize(restarts.map((r) => r.runningMs))
    // docker's first probe of a started container runs one interval after the start, Grail's at once
    const dockerApp = HEALTH_INTERVAL_MS + appRaw.median
    // the app's own start and health wait is what the replacement itself took from its creation to a
    // passing probe; the rest of kill → routed is the daemon's (noticing, planning, routing)
    const share = summarize(reactions.map((r) => r.routedMs - r.createToHealthyMs))
    const allowedMs = TARGET.daemonShareMs + createToHealthy.median
    const serveIdle = grailIdle[0] as IdleSample
    const dockerdIdle = dockerIdle[0] as IdleSample

    printTable(
      `bench/serve: SIGKILL of one of ${SERVICES.length} × ${REPLICAS} instances → replacement healthy and routed (${KILLS} kills each; median / max)`,
      [
        {
          measurement: 'kill → replacement healthy (state)',
          grail: medMax(healthy),
          'swarm (restart delay 0 s)': medMax(sw),
          'swarm (default, delay 5 s)': medMax(sw0),
          'docker --restart=always': medMax(rs),
        },
        {
          measurement: 'kill → routed (10 servers UP in HAProxy)',
          grail: medMax(routed),
          'swarm (restart delay 0 s)': '- (no proxy)',
          'swarm (default, delay 5 s)': '- (no proxy)',
          'docker --restart=always': '- (no proxy)',
        },
        {
          measurement: 'kill → successor running',
          grail: '-',
          'swarm (restart delay 0 s)': medMax(swRunning),
          'swarm (default, delay 5 s)': medMax(sw0Running),
          'docker --restart=always': medMax(rsRunning),
        },
        {
          measurement: 'kill → exit seen by the daemon (provider event)',
          grail: detected ? medMax(detected) : 'not logged',
        },
        { measurement: 'kill → replacement created (state row)', grail: medMax(created) },
        { measurement: 'replacement created → healthy (runc + gate)', grail: medMax(createToHealthy) },
        { measurement: 'replacement healthy → routed', grail: medMax(healthyToRouted) },
        {
          measurement: "the daemon's share: kill → routed − created → healthy",
          grail: medMax(share),
        },
        {
          measurement: `for scale: the app alone on the host, start → healthy (probe at once, then every ${ms(HEALTH_INTERVAL_MS)})`,
          grail: ms(appGated.median),
          'swarm (restart delay 0 s)': `${ms(dockerApp)} (first probe after 1 interval)`,
          'swarm (default, delay 5 s)': ms(dockerApp),
          'docker --restart=always': ms(dockerApp),
        },
      ],
    )
    const idleRow = (s: IdleSample, note: string) => ({
      process: `${s.name} (pid ${s.pid})`,
      'CPU (utime+stime)': pct(s.cpuPct),
      '+ children waited for': pct(s.cpuWithChildrenPct),
      'RSS end / max': `${mb(s.rssKb.end)} / ${mb(s.rssKb.max)}`,
      while: note,
    })
    printTable(`bench/serve: at idle, ${IDLE_S} s each, % of one core`, [
      ...grailIdle.map((s) => idleRow(s, `${SERVICES.length * REPLICAS} instances, nothing happening`)),
      ...dockerIdle.map((s) => idleRow(s, `${REPLICAS} swarm tasks + 1 container, health every 1 s`)),
    ])

    const checks: Check[] = [
      {
        check:
          "Grail kill → routed (median) within 2 s plus the app's own start and health wait (replacement created → healthy, median)",
        figure: `${ms(routed.median)} (created → healthy ${ms(createToHealthy.median)}, daemon's share ${ms(share.median)})`,
        target: `≤ ${ms(allowedMs)}`,
        pass: routed.median <= allowedMs,
      },
      {
        check:
          'Grail kill → routed (median) no slower than swarm kill → healthy task (median, restart delay 0 s)',
        figure: `${ms(routed.median)} vs ${ms(sw.median)}`,
        target: `≤ ${ms(sw.median)}`,
        pass: routed.median <= sw.median,
      },
      {
        check: 'grail serve at idle: CPU including the children it waited for',
        figure: `${pct(serveIdle.cpuWithChildrenPct)} (own ${pct(serveIdle.cpuPct)}), RSS ${mb(serveIdle.rssKb.max)}; dockerd ${pct(dockerdIdle.cpuWithChildrenPct)}, RSS ${mb(dockerdIdle.rssKb.max)}`,
        target: `≤ ${pct(TARGET.idleCpuPct)}`,
        pass: serveIdle.cpuWithChildrenPct <= TARGET.idleCpuPct,
      },
    ]
    printTable(
      'bench/serve: acceptance (issue 11, point 7)',
      checks.map((c) => ({ check: c.check, figure: c.figure, target: c.target, result: verdict(c.pass) })),
    )

    const path = await writeResults('serve', {
      kills: KILLS,
      services: SERVICES.length,
      replicas: REPLICAS,
      healthIntervalMs: HEALTH_INTERVAL_MS,
      healthTimeoutMs: HEALTH_TIMEOUT_MS,
      idleSeconds: IDLE_S,
      checks,
      passed: checks.every((c) => c.pass),
      app: { rawMs: appRaw, gatedMs: appGated, probes: app.probes, dockerAppMs: dockerApp },
      grail: {
        healthyMs: healthy,
        routedMs: routed,
        detectedMs: detected ?? null,
        createdMs: created,
        createToHealthyMs: createToHealthy,
        healthyToRoutedMs: healthyToRouted,
        daemonShareMs: share,
        reactions,
        reconcilePassesDuringIdle: passesInIdle,
        warnings: trouble,
        idle: grailIdle,
      },
      docker: {
        version: swarm.version,
        swarmDefault: { healthyMs: sw0, runningMs: sw0Running, reactions: swarmDefault },
        swarmRestartDelay0: { healthyMs: sw, runningMs: swRunning, reactions: swarmNoDelay },
        restartAlways: { healthyMs: rs, runningMs: rsRunning, reactions: restarts },
        idle: dockerIdle,
      },
      targets: TARGET,
      notes: [
        `grail: one project, ${SERVICES.length} services × ${REPLICAS} instances of busybox httpd (a rootfs base, \`sh -c "trap 'exit 0' TERM; httpd -f … & wait"\`), each service published through the data plane (HAProxy, the default), healthcheck { http: /index.html, interval: ${HEALTH_INTERVAL_MS}ms, timeout: ${HEALTH_TIMEOUT_MS}ms } (healthyThreshold 1), rollout { healthTimeout: 10s, drain: 0s }, crashLoop { restarts: 50 } (the bench's kills are no crash loop: with the default of 3 restarts in 10 minutes a fourth kill of one service would wait out the 30 s backoff; the replacements timed here are the same either way); \`grail up\`, then \`grail serve --interval 30s --log-level debug\` (the poll is only the safety net: every replacement here starts from the local provider's pid watch)`,
        "grail kill: SIGKILL of instances[].pid (the container's init) of a healthy instance from `grail status --json`, round robin over the services; healthy = the replacement's row in state.db (phase healthy, polled every 5 ms; `grail status --json` run afterwards shows it healthy: reactions[].statusHealth); routed = HAProxy's runtime API (`show stat <route> 4 -1` on the data plane's admin socket, polled every 5 ms) lists the replacement UP and 10 servers UP other than the killed one; the next kill waits until the killed instance is destroyed and gone from HAProxy, and then 1 s",
        "grail breakdown: detected = the time of the daemon's `provider event` log line for the exit minus the kill; created = instances.created_at of the replacement minus the kill; created → healthy = its updated_at (set when its gate passed) minus created_at: runc create and start, the overlay mount and the health gate",
        "the app's own start and health wait = the replacement's created → healthy (runc create and start, the app's start, the gate's probes: Grail probes at once, then every interval); the daemon's share = kill → routed − that, per kill; the target is 2 s + the median created → healthy",
        `for scale, app.gatedMs: the same busybox httpd spawned as a plain host process (no container) to healthy through Grail's own waitHealthy with the same check: its first probe, at once, comes before httpd listens, so it waits one interval (${HEALTH_INTERVAL_MS} ms); in a container the start of runc gives httpd that time, and the first probe passes`,
        `swarm: a private dockerd (${swarm.version}, own socket and data root, --bridge=none --iptables=false), \`docker swarm init\`, a service of ${REPLICAS} replicas of the same rootfs (docker import + a build adding the page), --network host, each task on ${DOCKER_PORT_BASE} + {{.Task.Slot}}, --health-cmd wget of the page, --health-interval ${HEALTH_INTERVAL_MS}ms --health-timeout ${HEALTH_TIMEOUT_MS}ms --health-retries 3, --stop-grace-period 1s; first with swarm's default restart policy (condition any, delay 5 s), then after \`docker service update --restart-delay 0ms\`; kill: SIGKILL (on the host) of State.Pid of a healthy task's container; healthy = the Engine API (/containers/json on the socket, filters label=com.docker.swarm.service.name and health=healthy, polled every 5 ms) lists ${REPLICAS} healthy task containers, none of them the killed one; running = the same with status=running; swarm has no proxy here (host networking), so there is no routed figure`,
        `docker --restart=always: \`docker run --restart=always --network host\` of the same image and health check on port ${DOCKER_PORT_BASE}; kill: SIGKILL of State.Pid, at least 10.5 s after its last start (dockerd doubles its restart delay, from 100 ms, while a container keeps exiting within 10 s of its start: killed sooner, the figure would be a crash loop's backoff); healthy = /containers/${RESTART_CONTAINER}/json shows it running with a new pid and StartedAt and Health.Status healthy (dockerd resets the health status at each start)`,
        `docker's app time = health interval (${HEALTH_INTERVAL_MS} ms: dockerd runs a container's first probe one interval after its start) + the host start → first 200 time`,
        `idle: over ${IDLE_S} s of wall-clock time, utime+stime of /proc/PID/stat as % of one core, and that plus cutime+cstime (children the process waited for in the window: the runc and other commands grail serve runs in its passes); RSS = VmRSS of /proc/PID/status, sampled every second; grail serve sampled from 10 s after its start was done (its first passes and patch check), with the 30 instances healthy and nothing happening (reconcilePassesDuringIdle: the passes in the window that applied something, ${passesInIdle} in this run); HAProxy and its keeper are shown for information (HAProxy runs the 30 servers' health checks); dockerd and its containerd (child of dockerd) sampled with ${REPLICAS} swarm tasks and the restart container running, whose health checks dockerd runs every second, before any kill`,
        'everything shares the same 2 cores with whatever else runs on the machine: figures include that contention',
      ],
    })
    console.log(`results: ${path}`)
    const failed = checks.filter((c) => !c.pass)
    if (failed.length > 0)
      throw new Error(
        `bench/serve: ${failed.length} of ${checks.length} acceptance checks FAIL:\n${failed.map((c) => `  ${c.check}: ${c.figure} (target ${c.target})`).join('\n')}`,
      )
  } finally {
    await project?.close()
    if (d) {
      await d.docker(['rm', '--force', RESTART_CONTAINER])
      await d.docker(['service', 'rm', SWARM_SERVICE])
      await d.docker(['swarm', 'leave', '--force'])
      await d.stop()
    }
    await rm(work, { recursive: true, force: true })
  }
}
