// Rolling 10 instances to a new image: Grail (`grail apply`, runc, health-gated, behind its proxy) against
// `docker service update` (swarm mode, start-first) rolling the same busybox httpd, count and health-check
// interval, in the same run; Grail's overhead per instance once the app's own start and health wait are
// taken out; and p50/p99 latency through Grail's proxy against the instance directly.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { HealthCheck } from '../../src/spec/types.js'
import { runCommand } from '../../src/util/exec.js'
import { makeBusyboxRootfs } from '../../test/helpers/busybox-rootfs.js'
import { type Dockerd, startDockerd } from '../../test/helpers/dockerd.js'
import { freePort } from '../../test/helpers/net.js'
import { GRAIL_BIN, removeDir } from '../../test/helpers/project.js'
import { type Measurement, measure, ms, printTable, summarize, writeResults } from '../lib.js'
import { timeApp } from './app.js'
import { prepareSwarm } from './docker.js'
import { type GrailProject, grailProject, HEALTH_INTERVAL_MS, REPLICAS } from './grail.js'
import { type LatencyRun, measureInterleaved, percentile } from './latency.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 8000)
const LATENCY_ROUNDS = 8
const SURGES = [1, 5]
const OVERHEAD_TARGET_MS = 100
const PROXY_P99_TARGET_MS = 1

const CHECK: HealthCheck = {
  type: 'http',
  path: '/index.html',
  expectStatus: 200,
  interval: HEALTH_INTERVAL_MS,
  timeout: 500,
  healthyThreshold: 1,
  unhealthyThreshold: 3,
  startPeriod: 0,
}

const met = (ok: boolean) => (ok ? 'met' : 'MISSED')

export async function run(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'grail-bench-rollout-'))
  let project: GrailProject | undefined
  let d: Dockerd | undefined
  try {
    const rootfs = makeBusyboxRootfs(join(work, 'bb.tar'))
    const www = join(work, 'www')
    await mkdir(www)
    await writeFile(join(www, 'index.html'), 'app\n')
    const app = await timeApp({ www, check: CHECK, runs: 10 })
    const appRaw = summarize(app.rawMs)
    const appGated = summarize(app.gatedMs)
    const cliStart = await measure(() => runCommand({ file: process.execPath, args: [GRAIL_BIN, '--help'] }))

    // --- Grail: one untimed `grail up`, one untimed warm-up rollout, then timed `grail apply`s ---
    project = await grailProject(await freePort())
    await project.up()
    let page = 0
    await project.roll({ maxSurge: 1, page: `g${++page}` })
    const grailRolls: Record<number, Measurement> = {}
    for (const surge of SURGES) {
      const samples: number[] = []
      for (let i = 0; i < RUNS; i++) samples.push(await project.roll({ maxSurge: surge, page: `g${++page}` }))
      grailRolls[surge] = summarize(samples)
    }

    // --- latency: one instance directly vs the proxy, from a separate process ---
    const direct = `http://127.0.0.1:${await project.instancePort()}/index.html`
    const latency: LatencyRun[] = []
    for (const concurrency of [1, 10]) {
      latency.push(
        ...(await measureInterleaved({
          targets: [
            ['direct', direct],
            ['proxy', project.url],
          ],
          requests: REQUESTS,
          rounds: LATENCY_ROUNDS,
          concurrency,
          warmup: 300,
        })),
      )
    }

    // --- docker swarm: same rootfs, one tag per rollout, 10 replicas on host networking, start-first ---
    d = await startDockerd({ name: 'roll' })
    // one tag (and port base) per rollout: an old task can outlive the update by seconds, still holding
    // its port, so a port base reused two rollouts later collided (the new task exited, the update paused)
    const tagCount = 2 + RUNS * SURGES.length
    const bases = Array.from({ length: tagCount }, (_, i) => 23000 + 100 * i)
    const swarm = await prepareSwarm(d, { work, rootfs, bases })
    await swarm.create(swarm.tags[0] as string)
    let current = 0
    const nextTag = (): string => {
      current++
      return swarm.tags[current] as string
    }
    await swarm.roll({ tag: nextTag(), parallelism: 1 })
    const dockerRolls: Record<number, Measurement> = {}
    for (const surge of SURGES) {
      const samples: number[] = []
      for (let i = 0; i < RUNS; i++) samples.push(await swarm.roll({ tag: nextTag(), parallelism: surge }))
      dockerRolls[surge] = summarize(samples)
    }

    // --- overhead: total minus the app's own start + health wait, once per batch of new instances ---
    const batches = (surge: number) => Math.ceil(REPLICAS / surge)
    // docker's first health probe runs one interval after start, Grail's at once: each gets its own app time
    const dockerApp = HEALTH_INTERVAL_MS + appRaw.median
    const overhead = (total: number, surge: number, appMs: number) =>
      (total - batches(surge) * appMs) / REPLICAS
    const rows: Record<string, string | number>[] = []
    const rollRows: Record<string, unknown> = {}
    for (const surge of SURGES) {
      const g = grailRolls[surge] as Measurement
      const k = dockerRolls[surge] as Measurement
      const gOver = overhead(g.median, surge, appGated.median)
      const kOver = overhead(k.median, surge, dockerApp)
      rollRows[`maxSurge${surge}`] = {
        grail: g,
        docker: k,
        grailOverheadPerInstance: gOver,
        dockerOverheadPerInstance: kOver,
      }
      rows.push(
        {
          measurement: `roll ${REPLICAS}, maxSurge ${surge}: total (median)`,
          grail: ms(g.median),
          docker: ms(k.median),
          ratio: (g.median / k.median).toFixed(3),
          target: '-',
        },
        {
          measurement: `roll ${REPLICAS}, maxSurge ${surge}: per instance`,
          grail: ms(g.median / REPLICAS),
          docker: ms(k.median / REPLICAS),
          ratio: (g.median / k.median).toFixed(3),
          target: '-',
        },
        {
          measurement: `roll ${REPLICAS}, maxSurge ${surge}: overhead per instance`,
          grail: ms(gOver),
          docker: ms(kOver),
          ratio: (gOver / kOver).toFixed(3),
          target: `< ${OVERHEAD_TARGET_MS} ms ${met(gOver < OVERHEAD_TARGET_MS)}`,
        },
      )
    }
    rows.push(
      {
        measurement: 'app start → first 200 (host, 1 ms polling)',
        grail: ms(appRaw.median),
        docker: ms(appRaw.median),
        ratio: '-',
        target: '-',
      },
      {
        measurement: 'app start → healthy (own health gate)',
        grail: ms(appGated.median),
        docker: ms(dockerApp),
        ratio: '-',
        target: '-',
      },
      {
        measurement: 'grail CLI start (grail --help)',
        grail: ms(cliStart.median),
        docker: '-',
        ratio: '-',
        target: '-',
      },
    )
    const latencyRows: Record<string, unknown> = {}
    for (const concurrency of [1, 10]) {
      const dir = latency.find((l) => l.target === 'direct' && l.concurrency === concurrency) as LatencyRun
      const pro = latency.find((l) => l.target === 'proxy' && l.concurrency === concurrency) as LatencyRun
      const o50 = pro.p50 - dir.p50
      const o99 = pro.p99 - dir.p99
      latencyRows[`c${concurrency}`] = {
        direct: latencySummary(dir),
        proxy: latencySummary(pro),
        overheadP50: o50,
        overheadP99: o99,
      }
      rows.push(
        {
          measurement: `GET c=${concurrency}: direct p50 / p99`,
          grail: `${ms(dir.p50)} / ${ms(dir.p99)}`,
          docker: '-',
          ratio: '-',
          target: '-',
        },
        {
          measurement: `GET c=${concurrency}: proxy p50 / p99`,
          grail: `${ms(pro.p50)} / ${ms(pro.p99)}`,
          docker: '-',
          ratio: '-',
          target: '-',
        },
        {
          measurement: `GET c=${concurrency}: proxy overhead p50 / p99`,
          grail: `${ms(o50)} / ${ms(o99)}`,
          docker: '-',
          ratio: '-',
          target: `p99 < ${PROXY_P99_TARGET_MS} ms ${met(o99 < PROXY_P99_TARGET_MS)}`,
        },
      )
    }
    printTable(
      `bench/rollout: ${REPLICAS} × busybox httpd, grail apply vs docker service update (swarm)`,
      rows,
    )

    const path = await writeResults('rollout', {
      runs: RUNS,
      replicas: REPLICAS,
      healthIntervalMs: HEALTH_INTERVAL_MS,
      app: { rawMs: appRaw, gatedMs: appGated, probes: app.probes, dockerAppMs: dockerApp },
      grailCliStart: cliStart,
      rollouts: rollRows,
      latency: latencyRows,
      docker: { version: swarm.version, taskFailures: swarm.failures },
      targets: { overheadPerInstanceMs: OVERHEAD_TARGET_MS, proxyP99OverheadMs: PROXY_P99_TARGET_MS },
      notes: [
        'grail: timed `grail apply` after an untimed `grail build` (new page each run); includes starting the CLI (see grailCliStart), state, the proxy route changes and stopping the old instances; drain: 0s, healthTimeout 10s, maxUnavailable 0 (start-first)',
        'docker: timed from `docker service update --detach --image` until `docker service inspect` shows UpdateStatus.State completed, polled every 20 ms through the CLI (each poll ~tens of ms); start-first, --update-parallelism = maxSurge, --update-delay 0s, --update-monitor 1ms, --stop-grace-period 1s, --update-failure-action continue --update-max-failure-ratio 1: with pause, an occasional new task that failed or exited at once (docker 20.10, host networking, e.g. "network sandbox does not exist for container") paused the update; now swarm replaces it and carries on, and the time includes that; the failed tasks are listed in docker.taskFailures',
        `overhead per instance = (median total − ceil(${REPLICAS}/maxSurge) × app time) / ${REPLICAS}: new instances of one batch start and wait in parallel, so the app time counts once per batch`,
        "app time (grail) = median time from spawning the same busybox httpd as a plain host process (no container) to healthy through Grail's own waitHealthy with the same check (probe at once, then every interval); container creation and start (runc, overlay mount) therefore count as Grail overhead",
        `app time (docker) = health interval (${HEALTH_INTERVAL_MS} ms: docker runs its first probe one interval after start) + the host start → first 200 time`,
        'the app is wrapped in `sh -c "trap \'exit 0\' TERM; httpd … & wait"` for both tools, so old instances stop on SIGTERM instead of waiting out the stop grace period (a bare httpd as PID 1 ignores SIGTERM)',
        'docker has no proxy in this setup: swarm publishing needs the ingress overlay network, and the harness dockerd runs with --bridge=none --iptables=false, so the service uses --network host and each task listens on BASE + {{.Task.Slot}} (BASE differs per image tag, one tag per rollout, so a new task never collides with an old one still shutting down)',
        "latency: a separate Node process (bench/rollout/latency-client.ts) with a keep-alive agent; busybox httpd closes every connection, so direct requests open a new connection each time, while through the proxy the client's connection is kept alive",
        `latency: ${REQUESTS} timed requests per target and concurrency, in ${LATENCY_ROUNDS} alternating rounds (direct then proxy, proxy then direct, ...; 300 warm-up requests before the first round, 30 before the others), samples pooled per target; overhead = proxy percentile − direct percentile`,
      ],
    })
    console.log(`results: ${path}`)
  } finally {
    if (project) {
      await project.down()
      await removeDir(project.dir)
    }
    await d?.stop()
    await rm(work, { recursive: true, force: true })
  }
}

/** A latency run without its raw samples (thousands per run): the count and the percentiles that matter. */
function latencySummary(r: LatencyRun): Record<string, unknown> {
  const { samples, ...rest } = r
  return {
    ...rest,
    requests: samples.length,
    p90: percentile(samples, 90),
    p999: percentile(samples, 99.9),
    max: Math.max(...samples),
  }
}
