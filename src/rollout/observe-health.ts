import { setTimeout as sleep } from 'node:timers/promises'
import { GrailError } from '../errors.js'
import type { ConfigBundle } from '../plan/config-bundle.js'
import type { RuntimeProvider } from '../runtime/types.js'
import type { HealthCheck, Project } from '../spec/types.js'
import type { Db, InstanceRecord, ProbeRecord } from '../state/index.js'
import { appendEvent, lastProbes, listReleases, nowIso, recordProbe } from '../state/index.js'
import { type ProbeResult, type ProbeTarget, checkFor, probeOnce } from './health.js'

/** What is needed to probe the instances of an environment; `ExecEnv` has all of it. */
export interface HealthEnv {
  project: Project
  environment: string
  db: Db
  provider: RuntimeProvider
  imageHealthcheck: (digest: string) => Promise<HealthCheck | undefined>
}

/** The health of an instance after its rollout, as the last run of probes found it. */
export interface WatchedHealth extends ProbeRecord {
  /** `unhealthyThreshold` probes failed in a row */
  unhealthy: boolean
  threshold: number
  /** taken from a probe recorded less than the check's interval ago, not probed again */
  reused: boolean
}

/**
 * How long one observation may spend on the probes of an instance (they all run at once). The default
 * check (1 s timeout, 2 s interval, 3 failures) fits in 7 s; slower checks finish their count over
 * several commands, since the failures in a row carry over.
 */
export const PROBE_BUDGET_MS = 10_000

/** Failures of a recorded probe still count towards the next ones when it is this recent. */
const CARRY_OVER_MS = 60_000

/**
 * A short run of probes: until one passes, until `unhealthyThreshold` have failed in a row (counting
 * `failuresBefore`, the failures in a row already recorded), or until the next one would not fit in
 * `budgetMs`; `interval` apart. One failed probe (a dropped connection, a pause) never makes an
 * instance unhealthy.
 */
export async function probeRun(
  check: HealthCheck,
  target: ProbeTarget,
  opts: { failuresBefore?: number; budgetMs?: number } = {},
): Promise<ProbeResult & { failures: number }> {
  const started = Date.now()
  const budget = opts.budgetMs ?? PROBE_BUDGET_MS
  let failures = opts.failuresBefore ?? 0
  for (;;) {
    const r = await probeOnce(check, target)
    if (r.ok) return { ...r, failures: 0 }
    failures++
    if (failures >= check.unhealthyThreshold) return { ...r, failures }
    if (Date.now() - started + check.interval + check.timeout > budget) return { ...r, failures }
    await sleep(check.interval)
  }
}

interface Target {
  record: InstanceRecord
  check: HealthCheck
  probe: ProbeTarget
}

/** The check and the address of each instance that passed its gate; the provider says where it is. */
async function targetsOf(a: HealthEnv, records: readonly InstanceRecord[]): Promise<Target[]> {
  const releases = listReleases(a.db, a.environment)
  const imageChecks = new Map<string, Promise<HealthCheck | undefined>>()
  const out: Target[] = []
  for (const record of records) {
    if (record.phase !== 'healthy') continue
    const svc = a.project.environments[a.environment]?.services[record.service]
    const release = releases.find((r) => r.service === record.service && r.number === record.releaseNumber)
    if (!svc || !release) continue
    const port = (release.config as Partial<ConfigBundle>).port ?? undefined
    if (!imageChecks.has(release.imageDigest))
      imageChecks.set(release.imageDigest, a.imageHealthcheck(release.imageDigest))
    const check = checkFor(svc.healthcheck ?? (await imageChecks.get(release.imageDigest)), port)
    if (!check) continue
    const h = { id: record.id, provider: a.provider.name }
    const probePort = ('port' in check ? check.port : undefined) ?? port
    let endpoint = { host: '127.0.0.1', port: 0 }
    try {
      if (probePort !== undefined) endpoint = await a.provider.endpoint(h, probePort)
    } catch (err) {
      // an instance the provider cannot place has no health to report; drift reports it as missing
      if (err instanceof GrailError) continue
      throw err
    }
    // the provider maps the port (and, with its own network, the host): probe exactly where it says
    const { port: _declared, ...unported } = check as HealthCheck & { port?: number }
    out.push({
      record,
      check: unported as HealthCheck,
      probe: { ...endpoint, exec: (argv) => a.provider.exec(h, argv) },
    })
  }
  return out
}

/**
 * Probes every running instance that passed its gate (or reuses a probe recorded less than the check's
 * `interval` ago), all at once, and records what it found, so `status`, `plan` and `apply` see the health
 * of now, not the health of the rollout. Instances with no check to run are left out.
 */
export async function watchHealth(
  a: HealthEnv,
  running: readonly InstanceRecord[],
  now: number = Date.now(),
): Promise<Map<string, WatchedHealth>> {
  const targets = await targetsOf(a, running)
  const before = lastProbes(
    a.db,
    targets.map((t) => t.record.id),
  )
  const results = await Promise.all(
    targets.map(async (t): Promise<WatchedHealth> => {
      const threshold = t.check.unhealthyThreshold
      const prev = before.get(t.record.id)
      // a probe from the future (the clock went back) is not recent: probe again
      const age = prev ? now - Date.parse(prev.at) : Number.NaN
      if (prev && age >= 0 && age < t.check.interval && (prev.ok || prev.failures >= threshold))
        return { ...prev, unhealthy: prev.failures >= threshold, threshold, reused: true }
      const failing = prev !== undefined && !prev.ok && age >= 0 && age < CARRY_OVER_MS
      const r = await probeRun(t.check, t.probe, { failuresBefore: failing ? prev.failures : 0 })
      const rec: ProbeRecord = {
        instance: t.record.id,
        at: nowIso(),
        ok: r.ok,
        detail: r.detail,
        failures: r.failures,
      }
      return { ...rec, unhealthy: r.failures >= threshold, threshold, reused: false }
    }),
  )
  const out = new Map<string, WatchedHealth>()
  for (const r of results) {
    out.set(r.instance, r)
    if (r.reused) continue
    const { unhealthy: _u, threshold: _t, reused: _r, ...rec } = r
    recordProbe(a.db, rec)
    const prev = before.get(r.instance)
    if (r.unhealthy && (prev === undefined || prev.failures < r.threshold))
      appendEvent(a.db, 'instance.unhealthy', r.instance, {
        environment: a.environment,
        detail: r.detail,
        failures: r.failures,
      })
  }
  return out
}

/** "HTTP 404, 3 probes in a row": what an unhealthy instance's replacement reason says. */
export function healthDetail(h: WatchedHealth): string {
  return `${h.detail}, ${h.failures} probe${h.failures === 1 ? '' : 's'} in a row`
}
