import type { CrashLoop } from '../plan/index.js'
import { crashLoopOf } from '../plan/index.js'
import type { InstanceRecord, ReleaseRecord } from '../state/index.js'
import { listReleases, liveInstances } from '../state/index.js'
import type { ExecEnv as ApplyEnv } from './types.js'
import { logTailsOf, restartHistory } from './crash-history.js'
import { inspectRecorded } from './observe.js'
import { type WatchedHealth, watchHealth } from './observe-health.js'

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
export async function environmentStatus(
  a: ApplyEnv,
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
