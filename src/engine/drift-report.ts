import { scanDrift } from '../drift/scan.js'
import type { DriftReport, InstanceDrift } from '../drift/types.js'
import { GrailError } from '../errors.js'
import type { Plan } from '../plan/index.js'
import type { EngineEnv } from './types.js'
import { planWithDrift } from './apply.js'
import type { ProxyReport } from '../rollout/proxies.js'
import { superviseProxies } from '../rollout/proxies.js'

export interface DriftReportOptions {
  /** only this instance; no such instance is an error (INSTANCE_NOT_FOUND) */
  instance?: string
  /** also list expected file changes (paths under drift.ignore) */
  all?: boolean
  /**
   * the plan is needed (`drift --fix` acts on it): a spec that cannot be planned is an error, and the
   * proxies are left to the apply that follows. Otherwise that drift is reported all the same, the spec's
   * problem as a change not applied, and the proxies are supervised (a dead one restarted).
   */
  requirePlan?: boolean
  /** the report's time */
  now?: number
}

/** A drift report, the plan it was made with, and what supervising the proxies found. */
export interface DriftReportResult {
  report: DriftReport
  plan: Plan
  /** empty with `requirePlan` */
  proxies: ProxyReport[]
}

/**
 * What `grail drift` reports for an environment: every instance's file and runtime drift (with text
 * diffs), orphans, and what the spec changed that is not applied (new releases, builds, revocations that
 * block). Reads state and the provider; changes nothing but a dead proxy, which it restarts.
 */
export async function driftReport(a: EngineEnv, opts: DriftReportOptions = {}): Promise<DriftReportResult> {
  const now = opts.now ?? Date.now()
  const proxies = opts.requirePlan ? [] : await superviseProxies(a)
  let plan: Plan = { environment: a.environment, actions: [], waiting: [], builds: [], blocked: [] }
  let drift: InstanceDrift[]
  const unplannable: Array<{ service: string; reason: string }> = []
  try {
    ;({ plan, drift } = await planWithDrift(a, { now, withDiffs: true }))
  } catch (err) {
    // the spec cannot be planned (an image never built, all versions revoked): drift is still reported
    if (!(err instanceof GrailError) || opts.requirePlan) throw err
    drift = await scanDrift(a, { withDiffs: true, now })
    unplannable.push({ service: '*', reason: err.message })
  }
  const instances = drift
    .filter((d) => opts.instance === undefined || d.instance === opts.instance)
    .map((d) => (opts.all ? d : { ...d, files: d.files.filter((f) => f.class !== 'expected') }))
  if (opts.instance !== undefined && instances.length === 0) {
    throw new GrailError('INSTANCE_NOT_FOUND', `no instance ${opts.instance} in ${a.environment}`, {
      hint: 'list the instances with `grail status`',
    })
  }
  const report: DriftReport = {
    environment: a.environment,
    at: new Date(now).toISOString(),
    instances,
    desired: [
      ...unplannable,
      ...plan.actions.flatMap((x) => (x.kind === 'deploy' ? [{ service: x.service, reason: x.reason }] : [])),
      ...plan.blocked.map((b) => ({ service: b.service, reason: b.reason })),
      ...plan.builds.flatMap((b) =>
        b.services.map((service) => ({ service, reason: `${b.image}: ${b.reason}` })),
      ),
    ],
    drifted: drift.filter((d) => d.unexplained > 0).map((d) => d.instance),
  }
  return { report, plan, proxies }
}
