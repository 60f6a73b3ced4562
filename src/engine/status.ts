import type { CrashLoop } from '../plan/index.js'
import { crashLoopOf } from '../plan/index.js'
import type { EngineEnv } from './types.js'
import { logTailsOf, restartHistory } from '../rollout/crash-history.js'
import { inspectRecorded } from '../rollout/observe.js'
import { type WatchedHealth, watchHealth } from '../rollout/observe-health.js'
import type { ProxyReport } from '../rollout/proxies.js'
import { superviseProxies } from '../rollout/proxies.js'
import type { Project } from '../spec/types.js'
import type { Db, InstanceRecord, ReleaseRecord } from '../state/index.js'
import { listReleases, liveInstances } from '../state/index.js'

type Observed = Awaited<ReturnType<typeof inspectRecorded>>

/** One instance as `status` shows it: what state recorded, what the provider and a fresh probe report. */
export interface InstanceStatus {
  record: InstanceRecord
  observed: Observed
  release: ReleaseRecord | undefined
  /** `healthy`, `failing`, `unhealthy`, or the phase or process state when it is none (`stopped`, `starting`) */
  health: string
  /** the last probe, when the instance has passed its gate and runs */
  probe?: WatchedHealth
}

/** A service whose active release is crash-looping, with the log tail of its dead or failing instance. */
export interface ServiceCrashLoop extends CrashLoop {
  service: string
  release: number
  instance: string | null
  log: string[]
}

/**
 * What `status` reports for an environment: each instance with its health probed now (or a recent
 * probe reused), and each service that is crash-looping. Reads state and the provider; changes nothing
 * but the probe records.
 */
async function environmentStatus(
  a: EngineEnv,
  now: number = Date.now(),
): Promise<{ instances: InstanceStatus[]; crashLoops: ServiceCrashLoop[]; releases: ReleaseRecord[] }> {
  const releases = listReleases(a.db, a.environment)
  const records = liveInstances(a.db, a.environment)
  // an instance that is gone, or whose id an older Grail made, is shown as such, not an error
  const observed = await Promise.all(records.map((r) => inspectRecorded(a.provider, r.id)))
  const watched = await watchHealth(
    a,
    records.filter((_, i) => observed[i]?.state === 'running'),
    now,
  )
  const instances = records.map((record, i): InstanceStatus => {
    const o = observed[i] as Observed
    const probe = watched.get(record.id)
    // failing: the last probe failed, but fewer than unhealthyThreshold in a row (not replaced yet)
    const probed = probe ? (probe.unhealthy ? 'unhealthy' : probe.ok ? 'healthy' : 'failing') : record.phase
    const health = o.state !== 'running' ? o.state : probed
    return {
      record,
      observed: o,
      release: releases.find((r) => r.service === record.service && r.number === record.releaseNumber),
      health,
      ...(probe ? { probe } : {}),
    }
  })
  const history = restartHistory(a, now)
  const crashLoops: ServiceCrashLoop[] = []
  for (const svc of Object.values(a.project.environments[a.environment]?.services ?? {})) {
    const active = releases.find((r) => r.service === svc.name && r.status === 'active')
    if (!active) continue
    const loop = crashLoopOf(svc.crashLoop, history[svc.name] ?? [], active.number, now)
    if (!loop) continue
    const failing = instances.find(
      (s) =>
        s.record.service === svc.name &&
        s.record.releaseNumber === active.number &&
        (s.health === 'stopped' || s.health === 'unhealthy'),
    )
    const log = failing ? ((await logTailsOf(a, [failing.record]))[failing.record.id] ?? []) : []
    crashLoops.push({
      ...loop,
      service: svc.name,
      release: active.number,
      instance: failing?.record.id ?? null,
      log,
    })
  }
  return { instances, crashLoops, releases }
}

/** One line of `grail status`: an instance with its release, image, health and last probe. */
export interface StatusRow {
  id: string
  service: string
  release: number
  /** `NAME vN`, or `?` when state has no release of that number */
  image: string
  digest: string | undefined
  createdAt: string
  health: string
  probe: { at: string; ok: boolean; detail: string; failures: number } | null
  pid: number | null
  port: number | null
}

/** A crash loop as `grail status` shows it, its next attempt as an ISO time. */
export interface StatusCrashLoop {
  service: string
  release: number
  restarts: number
  summary: string
  nextAttemptAt: string
  instance: string | null
  log: string[]
}

/** What `grail status` shows (and prints with `--json`, in this order). */
export interface StatusReport {
  environment: string
  instances: StatusRow[]
  crashLoops: StatusCrashLoop[]
  releases: ReleaseRecord[]
  /** each published service's proxy; a dead one was restarted */
  proxies: ProxyReport[]
}

/**
 * Everything `grail status` reports for an environment: its instances with their health probed now,
 * its crash loops, its releases, and its proxies (one found down is restarted, and reported as such so
 * that status can exit 1 and a monitor notices).
 */
export async function statusReport(a: EngineEnv, now: number = Date.now()): Promise<StatusReport> {
  const seen = await environmentStatus(a, now)
  return {
    environment: a.environment,
    instances: seen.instances.map(({ record: rec, observed: obs, release: rel, health, probe }) => ({
      id: rec.id,
      service: rec.service,
      release: rec.releaseNumber,
      image: rel ? `${rel.imageName} v${rel.imageVersion}` : '?',
      digest: rel?.imageDigest,
      createdAt: rec.createdAt,
      health,
      probe: probe ? { at: probe.at, ok: probe.ok, detail: probe.detail, failures: probe.failures } : null,
      pid: obs.pid ?? null,
      port: rec.hostPort,
    })),
    crashLoops: seen.crashLoops.map((c) => ({
      service: c.service,
      release: c.release,
      restarts: c.restarts,
      summary: c.summary,
      nextAttemptAt: new Date(c.nextAttemptAt).toISOString(),
      instance: c.instance,
      log: c.log,
    })),
    releases: seen.releases,
    proxies: await superviseProxies(a),
  }
}

/** What serves a service in an environment after a rollout: its active release, if any, and its URL. */
export interface Serving {
  service: string
  /** the active release; undefined when no release of the service has ever passed its gate here */
  release: number | undefined
  url: string | undefined
}

/**
 * The active release and published URL of every service of `environment` now: what apply, up and
 * promote report after their rollouts, and what a failed gate is explained against.
 */
export function servingNow(db: Db, project: Project, environment: string): Serving[] {
  const releases = listReleases(db, environment)
  return Object.values(project.environments[environment]?.services ?? {}).map((s) => {
    const active = releases.find((r) => r.service === s.name && r.status === 'active')
    return {
      service: s.name,
      release: active?.number,
      url: s.publish ? `http://${s.publish.host}:${s.publish.port}/` : undefined,
    }
  })
}
