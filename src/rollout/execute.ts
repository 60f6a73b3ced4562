import type { Action, Plan } from '../plan/index.js'
import { configBundleOf } from '../plan/index.js'
import type { ServiceSpec } from '../spec/types.js'
import type { ReleaseRecord } from '../state/index.js'
import {
  appendEvent,
  insertRelease,
  lastProbes,
  listReleases,
  liveInstances,
  recordRestart,
} from '../state/index.js'
import { crashPoint } from '../util/crash-points.js'
import { mapLimit } from '../util/pool.js'
import { backendCheckOf, countedUnhealthy, withCheck } from './backend-check.js'
import { rollOut } from './deploy.js'
import { checkFor } from './health.js'
import {
  backendsOf,
  GateFailed,
  STOP_CONCURRENCY,
  destroyInstance,
  launch,
  removeInstance,
  removeInstances,
  route,
  type Serving,
} from './instances.js'
import type { ExecEnv, RolloutContext, RolloutResult } from './types.js'

/*
 * The executor: carries out a Plan action by action and decides nothing of its own (what to deploy,
 * replace or destroy, and why, is plan/'s; gathering what it decides from is engine/'s).
 */

async function contextFor(a: ExecEnv, svc: ServiceSpec, imageDigest: string): Promise<RolloutContext> {
  return {
    db: a.db,
    provider: a.provider,
    router: await a.routerFor(svc),
    project: a.project.name,
    environment: a.environment,
    service: svc.name,
    replicas: svc.replicas,
    port: svc.port,
    volumes: svc.volumes.map((v) => ({ name: v.name, path: v.path })),
    healthcheck: svc.healthcheck ?? (await a.imageHealthcheck(imageDigest)),
    rollout: svc.rollout,
    onEvent: (e) => a.onEvent?.(svc.name, e),
  }
}

/**
 * Instances of a release that passed their gate, with where to reach them and the check the proxy runs on
 * each; those Grail's last probes count as unhealthy are marked, so no route goes to them.
 */
export async function servingOf(a: ExecEnv, svc: ServiceSpec, release: number): Promise<Serving[]> {
  const records = liveInstances(a.db, a.environment, svc.name).filter(
    (rec) => rec.phase === 'healthy' && rec.releaseNumber === release,
  )
  if (records.length === 0) return []
  const digest = listReleases(a.db, a.environment, svc.name).find((r) => r.number === release)?.imageDigest
  const imageCheck = digest === undefined ? undefined : await a.imageHealthcheck(digest)
  // Grail's own probes judge by the spec's check (as observe-health does); the proxy is given only what
  // is fixed for the release (its image's check, else a connect), since the spec's check may be a new
  // one being rolled out (a release whose check fails must not eject the old instances still serving);
  // instances launched under the spec's check carry it in the routes the rollout sets
  const check = checkFor(svc.healthcheck ?? imageCheck, svc.port)
  const releaseCheck = checkFor(imageCheck, svc.port)
  const probes = lastProbes(
    a.db,
    records.map((r) => r.id),
  )
  const out: Serving[] = []
  for (const rec of records) {
    const h = { id: rec.id, provider: a.provider.name }
    let backend: Serving['backend'] = null
    if (svc.port !== undefined) {
      const endpoint = await a.provider.endpoint(h, svc.port)
      const proxyCheck = await backendCheckOf(releaseCheck, endpoint.port, (p) => a.provider.endpoint(h, p))
      backend = withCheck({ id: rec.id, ...endpoint }, proxyCheck)
    }
    const unhealthy = countedUnhealthy(check, probes.get(rec.id))
    out.push({ id: rec.id, release, backend, ...(unhealthy ? { unhealthy } : {}) })
  }
  return out
}

function activeRelease(a: ExecEnv, service: string): ReleaseRecord | null {
  return listReleases(a.db, a.environment, service).find((r) => r.status === 'active') ?? null
}

/** Deploys one release of a service by replacement (used by apply and by rollback). */
export async function deploy(a: ExecEnv, svc: ServiceSpec, release: ReleaseRecord): Promise<RolloutResult> {
  const ctx = await contextFor(a, svc, release.imageDigest)
  const previous = activeRelease(a, svc.name)
  const serving = previous ? await servingOf(a, svc, previous.number) : []
  return rollOut(ctx, release, { previous, serving })
}

async function execute(a: ExecEnv, action: Action): Promise<RolloutResult | null> {
  const svc = a.project.environments[a.environment]?.services[action.service]
  if (action.kind === 'destroy' || !svc) {
    if ('instance' in action) {
      await removeInstance(a.db, a.provider, action.instance, { reason: action.reason, graceMs: 2000 })
    }
    return null
  }
  if (action.kind === 'deploy') {
    const release = insertRelease(a.db, {
      service: svc.name,
      environment: a.environment,
      imageName: action.image.name,
      imageVersion: action.image.version,
      imageDigest: action.image.digest,
      configDigest: action.configDigest,
      config: configBundleOf(svc),
    })
    crashPoint('release-recorded')
    appendEvent(a.db, 'release.created', `${svc.name}#${release.number}`, {
      environment: a.environment,
      reason: action.reason,
    })
    return deploy(a, svc, release)
  }
  const active = activeRelease(a, svc.name)
  if (!active) return null
  const ctx = await contextFor(a, svc, active.imageDigest)
  let serving = await servingOf(a, svc, active.number)
  if (action.kind === 'replace') {
    if (action.cause === 'crashed' || action.cause === 'unhealthy') {
      // counted before the replacement starts, so a killed apply still counts towards the crash loop
      recordRestart(a.db, {
        environment: a.environment,
        service: svc.name,
        release: active.number,
        instance: action.instance,
        cause: action.cause,
      })
    }
    appendEvent(a.db, 'instance.replaced', action.instance, {
      environment: a.environment,
      cause: action.cause,
      reason: action.reason,
    })
  }
  if (action.kind === 'replace' && svc.rollout.order === 'stop-first') {
    // an exclusive volume (or the service's own choice): the old instance is gone before the new one starts
    serving = serving.filter((s) => s.id !== action.instance)
    await route(ctx, serving)
    await destroyInstance(ctx, action.instance, action.reason)
    await route(ctx, [...serving, await launch(ctx, active)])
  } else if (action.kind === 'scale-up' || action.kind === 'replace') {
    const fresh = await launch(ctx, active)
    serving = [...serving.filter((s) => s.id !== ('instance' in action ? action.instance : '')), fresh]
    await route(ctx, serving)
    if (action.kind === 'replace') await destroyInstance(ctx, action.instance, action.reason)
    for (let i = 1; action.kind === 'scale-up' && i < action.count; i++) {
      serving = [...serving, await launch(ctx, active)]
      await route(ctx, serving)
    }
  } else if (action.kind === 'scale-down') {
    await route(
      ctx,
      serving.filter((s) => !action.instances.includes(s.id)),
    )
    await mapLimit(action.instances, STOP_CONCURRENCY, (id) => destroyInstance(ctx, id, action.reason))
  }
  return null
}

function startFirst(a: ExecEnv, service: string): boolean {
  return a.project.environments[a.environment]?.services[service]?.rollout.order !== 'stop-first'
}

/** Replacements of instances that still serve: they count against the disruption budget. */
function isVoluntary(action: Action): action is Extract<Action, { kind: 'replace' }> {
  return action.kind === 'replace' && (action.cause === 'recycle' || action.cause === 'drift')
}

/**
 * Replaces several healthy instances of one service at once, start-first: the new ones are launched and
 * pass their health gates together, the router then swaps them in, and only then are the old ones
 * drained and destroyed, so the service never has fewer healthy instances than before.
 */
async function replaceBatch(a: ExecEnv, batch: Array<Extract<Action, { kind: 'replace' }>>): Promise<void> {
  const first = batch[0] as Extract<Action, { kind: 'replace' }>
  const svc = a.project.environments[a.environment]?.services[first.service]
  const active = svc ? activeRelease(a, svc.name) : null
  if (!svc || !active) return
  const ctx = await contextFor(a, svc, active.imageDigest)
  const old = new Set(batch.map((b) => b.instance))
  const fresh = await Promise.all(batch.map(() => launch(ctx, active)))
  const serving = [
    ...(await servingOf(a, svc, active.number)).filter(
      (s) => !old.has(s.id) && !fresh.some((f) => f.id === s.id),
    ),
    ...fresh,
  ]
  await route(ctx, serving)
  await Promise.all(batch.map((b) => destroyInstance(ctx, b.instance, b.reason)))
}

/** A new instance of an active release (a replacement or an extra replica) that failed its health gate. */
export interface FailedLaunch {
  service: string
  instance: string
  reason: string
}

/**
 * Executes a plan: every published service's router is first pointed at its healthy instances (so a
 * restarted proxy serves), then the actions run in order. Destroys go together; replacements of instances
 * that still serve (recycle, drift, an expired hotfix) go a disruption budget at a time; a replacement or
 * extra replica that fails its health gate leaves the rest of the plan to run and is reported.
 */
export async function executePlan(
  a: ExecEnv,
  thePlan: Plan,
): Promise<{ results: RolloutResult[]; failed: FailedLaunch[] }> {
  const results: RolloutResult[] = []
  for (const svc of Object.values(a.project.environments[a.environment]?.services ?? {})) {
    const active = activeRelease(a, svc.name)
    const router = await a.routerFor(svc)
    if (active && router) await router.setBackends(backendsOf(await servingOf(a, svc, active.number)))
  }
  const budget = Math.max(1, a.project.policies.disruptionBudget.maxUnavailable)
  const actions = thePlan.actions
  const failed: FailedLaunch[] = []
  for (let i = 0; i < actions.length; i++) {
    const action = actions[i] as Action
    // destroy actions (orphans, instances of removed services) touch no traffic: a run of them goes at once
    if (action.kind === 'destroy') {
      const run: Array<{ id: string; reason: string }> = []
      for (let j = i; j < actions.length; j++) {
        const next = actions[j] as Action
        if (next.kind !== 'destroy') break
        run.push({ id: next.instance, reason: next.reason })
        i = j
      }
      await removeInstances(a.db, a.provider, run, { graceMs: 2000 })
      continue
    }
    // replacements of healthy instances (recycle, drift, an expired hotfix) go a disruption budget at a time
    if (isVoluntary(action) && budget > 1 && startFirst(a, action.service)) {
      const batch = [action]
      while (batch.length < budget) {
        const next = actions[i + 1]
        if (next === undefined || !isVoluntary(next) || next.service !== action.service) break
        batch.push(next)
        i++
      }
      await replaceBatch(a, batch)
      continue
    }
    try {
      const r = await execute(a, action)
      if (r) results.push(r)
    } catch (err) {
      // a replacement that fails its gate leaves the rest of the plan to run; it counts as a restart
      if (!(err instanceof GateFailed) || (action.kind !== 'replace' && action.kind !== 'scale-up')) throw err
      const release = activeRelease(a, action.service)
      if (action.kind === 'scale-up' && release)
        recordRestart(a.db, {
          environment: a.environment,
          service: action.service,
          release: release.number,
          instance: err.instance,
          cause: 'gate-failed',
        })
      failed.push({ service: action.service, instance: err.instance, reason: err.reason })
    }
  }
  return { results, failed }
}
