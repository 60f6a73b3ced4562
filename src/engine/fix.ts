import type { DriftReport } from '../drift/types.js'
import type { Action } from '../plan/index.js'
import type { EngineEnv } from './types.js'
import { applyEnvironment } from './apply.js'
import { driftReport } from './drift-report.js'

/**
 * The actions of a plan that `grail drift --fix` carries out: every replacement (a drifted, missing,
 * crashed, unhealthy or recycled instance; with `instance`, only that one's) and, when no instance is
 * named, the destruction of orphans. New releases, scaling and superseded instances are left to apply.
 */
export function fixesDrift(action: Action, instance?: string): boolean {
  if (action.kind === 'replace') return instance === undefined || action.instance === instance
  return action.kind === 'destroy' && action.cause === 'orphan' && instance === undefined
}

/** What `grail drift --fix` did: the drift report it acted on and the apply that replaced instances. */
export interface FixResult {
  report: DriftReport
  fixed: Awaited<ReturnType<typeof applyEnvironment>>
}

/**
 * `grail drift --fix`: reports the drift, then replaces what drifted through the normal rollout
 * (health gates, one at a time) and destroys orphans; nothing else the plan holds is applied. Under the
 * apply lock. An instance that is not there is an error before anything is replaced.
 */
export async function fixDrift(
  a: EngineEnv,
  opts: { instance?: string; all?: boolean } = {},
): Promise<FixResult> {
  const { report } = await driftReport(a, { ...opts, requirePlan: true })
  const fixed = await applyEnvironment(
    { ...a, fixAllDrift: true },
    { only: (x) => fixesDrift(x, opts.instance) },
  )
  return { report, fixed }
}
