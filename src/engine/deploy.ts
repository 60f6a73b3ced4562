import { GrailError } from '../errors.js'
import type { Action, Plan } from '../plan/index.js'
import type { ProxyReport } from '../rollout/proxies.js'
import { type ApplyResult, applyEnvironment, planEnvironment } from './apply.js'
export { blockedByRevocation, pendingBuildLines } from './apply.js'
import { type Serving, servingNow } from './status.js'
import type { EngineEnv } from './types.js'

/** `grail plan`: the proxies supervised (a dead one restarted, and said), then the plan at `now`. */
export async function planReport(a: EngineEnv, now: number): Promise<{ plan: Plan; proxies: ProxyReport[] }> {
  const { superviseProxies } = await import('../rollout/proxies.js')
  const proxies = await superviseProxies(a)
  return { plan: await planEnvironment(a, { now }), proxies }
}

/** What `grail apply` and `grail up` report: the applied plan, then what serves and where. */
export interface DeployReport extends ApplyResult {
  serving: Serving[]
  /** only where a release serves: after a failed first deploy there is nothing behind the URL */
  urls: Array<{ service: string; url: string }>
  /** images `--locked` pulled from the registry (`host/repo@digest`) */
  pulled: string[]
}

/**
 * `grail apply` (and the deploy half of `grail up`): with `locked`, the image digests grail.lock records
 * run instead of what the spec builds (LOCK_INVALID when the file is not a lock Grail can read).
 */
export async function deployEnvironment(
  a: EngineEnv,
  opts: { locked?: boolean } = {},
): Promise<DeployReport> {
  let locked: EngineEnv['locked']
  let pulled: string[] = []
  if (opts.locked) {
    const { readLock, lockedImages } = await import('../lifecycle/lock.js')
    const services = Object.values(a.project.environments[a.environment]?.services ?? {})
    const names = [...new Set(services.map((s) => s.image))]
    const lock = await readLock(a.project)
    // a fresh machine has the repo and its lock: what the lock names comes from the registry, by digest
    const { pullLockedImages } = await import('../lifecycle/registry/ensure.js')
    pulled = (await pullLockedImages(a, lock, names)).filter((p) => p.created).map((p) => p.reference)
    locked = lockedImages(a.project, lock, a.db, names)
  }
  const r = await applyEnvironment({ ...a, ...(locked ? { locked } : {}) })
  const serving = servingNow(a.db, a.project, a.environment)
  const urls = serving.flatMap((s) =>
    s.url && s.release !== undefined ? [{ service: s.service, url: s.url }] : [],
  )
  return { ...r, serving, urls, pulled }
}

const isRecycle = (x: Action): boolean => x.kind === 'replace' && x.cause === 'recycle'

/**
 * `grail recycle`: the replacements the recycle policy makes due at `now` (oldest or most drifted first),
 * listed with `dryRun`, else executed (a disruption budget at a time) and nothing else of the plan;
 * with `service`, only that service's.
 */
export async function recycleEnvironment(
  a: EngineEnv,
  opts: { dryRun: boolean; now: number; service?: string },
): Promise<{ environment: string; actions: Action[]; done: boolean }> {
  const { service } = opts
  if (service !== undefined && !a.project.environments[a.environment]?.services[service]) {
    throw new GrailError('UNKNOWN_SERVICE', `no service ${service} in ${a.environment}`, {
      hint: `services: ${Object.keys(a.project.environments[a.environment]?.services ?? {}).join(', ')}`,
    })
  }
  const due = (x: Action): boolean => isRecycle(x) && (service === undefined || x.service === service)
  if (opts.dryRun) {
    const p = await planEnvironment(a, { now: opts.now })
    return { environment: a.environment, actions: p.actions.filter(due), done: false }
  }
  const r = await applyEnvironment(a, { only: due, now: opts.now })
  return { environment: a.environment, actions: r.plan.actions, done: true }
}
