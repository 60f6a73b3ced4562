import { driftReport } from '../../engine/drift-report.js'
import { hotfixSummaries } from '../../engine/fleet.js'
import { lastProbes, listImages, liveInstances } from '../../state/index.js'
import type { ServerContext } from '../context.js'
import type { MetricFamily } from './metrics.js'

/** How long a drift scan's counts are reused: a scrape every 15 s does not rescan every instance each time. */
const DRIFT_CACHE_MS = 30_000

/** Drift findings per environment, with the time they were counted. */
export type DriftCache = Map<string, { at: number; byService: Map<string, number> }>

/** The unexplained drift findings of each service of `env`, from a scan at most DRIFT_CACHE_MS old. */
async function driftCounts(
  ctx: ServerContext,
  env: string,
  cache: DriftCache,
  now: number,
): Promise<Map<string, number>> {
  const hit = cache.get(env)
  if (hit && now - hit.at < DRIFT_CACHE_MS) return hit.byService
  const byService = new Map<string, number>()
  try {
    const { report } = await ctx.withEnvironment(env, { lock: false }, (a) => driftReport(a, { now }))
    for (const d of report.instances)
      byService.set(d.service, (byService.get(d.service) ?? 0) + d.unexplained)
  } catch (err) {
    // a provider that cannot be reached right now: the other metrics are still worth serving
    ctx.log.warn({ err, environment: env }, 'metrics: drift scan failed')
    return hit?.byService ?? byService
  }
  cache.set(env, { at: now, byService })
  return byService
}

/**
 * The metrics `/metrics` serves: instances by health (state and their last probe), image age, drift
 * findings (a cached scan), live hotfixes, rollouts and reconcile durations (the reconcilers' figures).
 */
export async function fleetMetrics(
  ctx: ServerContext,
  cache: DriftCache,
  now = Date.now(),
): Promise<MetricFamily[]> {
  const project = ctx.project()
  const envs = ctx.environments.filter((e) => Object.hasOwn(project.environments, e))
  const instances: MetricFamily = {
    name: 'grail_instances',
    help: 'Instances by environment, service and health (healthy, failing, unhealthy, or their phase).',
    type: 'gauge',
    samples: [],
  }
  const drift: MetricFamily = {
    name: 'grail_drift_findings',
    help: 'Unexplained drift findings (files and runtime) of the instances of a service.',
    type: 'gauge',
    samples: [],
  }
  for (const env of envs) {
    const records = liveInstances(ctx.db, env)
    const probes = lastProbes(
      ctx.db,
      records.map((r) => r.id),
    )
    const counts = new Map<string, number>()
    const services = project.environments[env]?.services ?? {}
    for (const r of records) {
      const probe = probes.get(r.id)
      // as `grail status` says it: failing until unhealthyThreshold probes in a row failed
      const threshold = services[r.service]?.healthcheck?.unhealthyThreshold ?? 1
      const health =
        r.phase !== 'healthy' || !probe || probe.ok
          ? r.phase
          : probe.failures >= threshold
            ? 'unhealthy'
            : 'failing'
      const key = JSON.stringify([r.service, health])
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    for (const [key, value] of counts) {
      const [service, health] = JSON.parse(key) as [string, string]
      instances.samples.push({ labels: { environment: env, service, health }, value })
    }
    const findings = await driftCounts(ctx, env, cache, now)
    for (const svc of Object.keys(project.environments[env]?.services ?? {}))
      drift.samples.push({ labels: { environment: env, service: svc }, value: findings.get(svc) ?? 0 })
  }
  const stats = ctx.stats()
  return [
    instances,
    {
      name: 'grail_image_age_seconds',
      help: 'Seconds since an image version was built.',
      type: 'gauge',
      samples: listImages(ctx.db).map((i) => ({
        labels: { image: i.name, version: String(i.version) },
        value: Math.max(0, Math.round((now - Date.parse(i.createdAt)) / 1000)),
      })),
    },
    drift,
    {
      name: 'grail_hotfixes_live',
      help: 'Hotfixes whose TTL has not ended (their drift is excused).',
      type: 'gauge',
      samples: [{ labels: {}, value: hotfixSummaries(ctx.db, now).filter((h) => h.live).length }],
    },
    {
      name: 'grail_rollouts_total',
      help: 'Rollouts the reconciler ran since grail serve started, by outcome.',
      type: 'counter',
      samples: stats.flatMap((s) => [
        { labels: { environment: s.environment, outcome: 'ok' }, value: s.rollouts.ok },
        { labels: { environment: s.environment, outcome: 'failed' }, value: s.rollouts.failed },
      ]),
    },
    {
      name: 'grail_reconcile_duration_seconds',
      help: 'Duration of reconcile passes.',
      type: 'summary',
      samples: stats.flatMap((s) => [
        { labels: { environment: s.environment }, value: s.totalMs / 1000, suffix: '_sum' },
        { labels: { environment: s.environment }, value: s.passes, suffix: '_count' },
      ]),
    },
  ]
}
