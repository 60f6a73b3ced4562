import type { InstanceDrift } from '../drift/types.js'
import { GrailError } from '../errors.js'
import type { Action, DesiredService, Plan } from '../plan/index.js'
import { desiredServices as chooseDesired, plan } from '../plan/index.js'
import { executePlan, type FailedLaunch } from '../rollout/execute.js'
import type { ProxyReport } from '../rollout/proxies.js'
import { recoverInterrupted } from '../rollout/recover.js'
import type { RolloutResult } from '../rollout/types.js'
import { listReleases } from '../state/index.js'
import { gatherFacts, serviceFacts } from './facts.js'
import type { EngineEnv } from './types.js'

export type { FailedLaunch } from '../rollout/execute.js'

/**
 * What the spec, the lock and the catalog want for every service of the environment (see
 * plan/desired.ts), without observing any instance: IMAGE_REVOKED or IMAGE_NOT_BUILT when a service has
 * nothing it may run.
 */
export async function desiredServices(a: EngineEnv): Promise<DesiredService[]> {
  const releases: Record<string, ReturnType<typeof listReleases>> = {}
  for (const r of listReleases(a.db, a.environment)) releases[r.service] = [...(releases[r.service] ?? []), r]
  return chooseDesired(a.environment, await serviceFacts(a, releases), releases)
}

/** The plan for an environment at `now`: the facts are gathered, the planner decides. */
export async function planEnvironment(a: EngineEnv, opts: { now: number }): Promise<Plan> {
  return (await planWithDrift(a, opts)).plan
}

/** The plan, and the drift scan of every instance it was made from (drift is a reason to replace). */
export async function planWithDrift(
  a: EngineEnv,
  opts: { now: number; withDiffs?: boolean },
): Promise<{ plan: Plan; drift: InstanceDrift[] }> {
  const { input, drift } = await gatherFacts(a, opts)
  return { plan: plan(input), drift }
}

/** One line per image to build first, as plan shows it: `hello: sources changed since v1 (…): …`. */
export function pendingBuildLines(p: Plan): string[] {
  return p.builds.map((b) => `${b.image}: ${b.reason}: grail up builds and deploys it`)
}

/** `apply` deploys built versions only: an image the spec builds but the catalog lacks stops it. */
function buildNeeded(p: Plan): GrailError {
  return new GrailError('BUILD_NEEDED', pendingBuildLines(p).join('\n'), {
    hint: `run \`grail up${p.environment ? ` ${p.environment}` : ''}\` (build, then apply), or \`grail build\` and then \`grail apply\`; nothing was changed`,
  })
}

/**
 * A revoked image with nothing allowed to replace it (a promoted-to environment whose every promotion is
 * revoked) stops `apply` before it changes anything, as `plan` reports it.
 */
export function blockedByRevocation(p: Plan): GrailError {
  return new GrailError('REVOKED_NO_REPLACEMENT', p.blocked.map((b) => b.reason).join('\n'), {
    hint: `${[...new Set(p.blocked.map((b) => b.hint))].join('; ')}; nothing was changed`,
  })
}

/** What an apply did: the plan it executed, each rollout, what it recovered or failed, the proxies. */
export interface ApplyResult {
  plan: Plan
  results: RolloutResult[]
  recovered: string[]
  failed: FailedLaunch[]
  proxies: ProxyReport[]
}

/**
 * `grail apply`: the provider's cleanup and the recovery of what a killed run left, the proxies
 * supervised, then the plan at `now` (default: the time planning starts), handed whole (or the actions
 * `only` keeps) to the executor.
 */
export async function applyEnvironment(
  a: EngineEnv,
  opts: { only?: (action: Action) => boolean; now?: number } = {},
): Promise<ApplyResult> {
  const recovered = [
    ...(await a.provider.reconcile({ project: a.project.name, environment: a.environment })),
    ...(await recoverInterrupted(a)),
  ]
  // proxies no service needs go first: a renamed service may publish its predecessor's port
  const { stopUnneededProxies, superviseProxies } = await import('../rollout/proxies.js')
  const proxies = [...(await stopUnneededProxies(a)), ...(await superviseProxies(a))]
  const full = await planEnvironment(a, { now: opts.now ?? Date.now() })
  if (!opts.only && full.blocked.length > 0) throw blockedByRevocation(full)
  if (!opts.only && full.builds.length > 0) throw buildNeeded(full)
  const thePlan = opts.only ? { ...full, actions: full.actions.filter(opts.only) } : full
  const { results, failed } = await executePlan(a, thePlan)
  return { plan: thePlan, results, recovered, failed, proxies }
}
