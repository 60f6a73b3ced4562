import type { Digest } from '../oci/digest.js'
import { join } from 'node:path'
import { type CurrentImage, currentImages, whatChanged } from '../build/current.js'
import { type DriftEnv, driftSummary, scanDrift } from '../drift/scan.js'
import { dueForRecycle } from '../lifecycle/recycle.js'
import type { InstanceDrift } from '../drift/types.js'
import { GrailError } from '../errors.js'
import type { GrailHome } from '../home.js'
import type { Action, DesiredService, Plan, ReleaseView } from '../plan/index.js'
import { configBundleOf, configDigest, plan, promotedReleases } from '../plan/index.js'
import { requireEnvironment } from '../spec/environments.js'
import type { HealthCheck, Project, ServiceSpec } from '../spec/types.js'
import type { InstanceRecord, ReleaseRecord } from '../state/index.js'
import {
  appendEvent,
  insertRelease,
  lastProbes,
  latestImage,
  listImages,
  listReleases,
  markInterruptedHotfixes,
  recordRestart,
  liveInstances,
  revokedDigests,
  setReleaseStatus,
} from '../state/index.js'
import { crashPoint } from './crash-points.js'
import { rollOut } from './deploy.js'
import { mapLimit } from '../util/pool.js'
import { backendCheckOf, countedUnhealthy, withCheck } from './backend-check.js'
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
import { observe } from './observe.js'
import { logTailsOf, restartHistory } from './crash-history.js'
import { healthDetail, watchHealth } from './observe-health.js'
import type { ProxyReport } from './proxies.js'
import type { RolloutContext, RolloutEvent, RolloutResult, Router } from './types.js'

/** An environment opened for planning and applying: what a drift scan needs, plus routers and hooks. */
export interface ApplyEnv extends DriftEnv {
  /** `apply --locked`: the image digests of grail.lock, by image name, instead of the newest builds */
  locked?: Record<string, { name: string; version: number; digest: string }>
  /** the router of a published service (the supervised proxy); null when it is not published */
  routerFor: (service: ServiceSpec) => Promise<Router | null>
  /** the image's own health check (from its label), when the service declares none */
  imageHealthcheck: (digest: string) => Promise<HealthCheck | undefined>
  onEvent?: (service: string, e: RolloutEvent) => void
}

/**
 * What the spec and the catalog want for every service of the environment: the image version whose
 * build key equals what the spec and its sources give now (not the newest build: after a revert that is
 * an older version), unless the lock (`--locked`) or a promotion decides. When the catalog has no version
 * of that key, the service is marked as needing a build, naming what changed since the version it runs.
 */
export async function desiredServices(a: ApplyEnv): Promise<DesiredService[]> {
  const { project, environment, db, locked } = a
  requireEnvironment(project, environment)
  const env = project.environments[environment] as Project['environments'][string]
  const releases = listReleases(db, environment)
  const promotedOf = (service: string): ReleaseRecord | undefined =>
    promotedReleases(releases.filter((r) => r.service === service))[0]
  const services = Object.values(env.services)
  // an environment that receives promotions runs what was promoted to it, not what the spec builds
  const needed = services.filter((s) => !locked?.[s.image] && !promotedOf(s.name)).map((s) => s.image)
  const current =
    needed.length > 0 ? await currentImages(a, [...new Set(needed)]) : new Map<string, CurrentImage>()
  return services.map((svc) => {
    const base = {
      service: svc.name,
      replicas: svc.replicas,
      configDigest: configDigest(configBundleOf(svc)),
      crashLoop: svc.crashLoop,
    }
    const pinned = locked?.[svc.image]
    if (pinned) {
      return {
        ...base,
        image: { name: pinned.name, version: pinned.version, digest: pinned.digest as Digest },
      }
    }
    // which promotion runs (the newest whose image is not revoked) is the planner's choice
    if (promotedOf(svc.name)) return { ...base, image: null, promoted: true }
    const now = current.get(svc.image)
    const versions = listImages(db, svc.image)
    if (now !== undefined && !now.built && versions.length > 0) {
      const running = releases.find((r) => r.service === svc.name && r.status === 'active')
      const since =
        (running &&
          versions.find((v) => v.name === running.imageName && v.version === running.imageVersion)) ??
        versions[0]
      return {
        ...base,
        image: null,
        build: { image: svc.image, reason: whatChanged(project, db, now, since) },
      }
    }
    // a revoked version is not deployed even when the spec builds it: the newest active one stands in
    const image = now?.built && now.record.status !== 'revoked' ? now.record : latestImage(db, svc.image)
    if (!image && versions.length > 0) {
      throw new GrailError(
        'IMAGE_REVOKED',
        `${environment}: service ${svc.name}: every version of image ${svc.image} is revoked`,
        {
          hint: `build a new version (\`grail build ${svc.image}\`) or unrevoke one (\`grail unrevoke ${svc.image}@N\`)`,
        },
      )
    }
    if (!image) {
      throw new GrailError(
        'IMAGE_NOT_BUILT',
        `service ${svc.name} needs image ${svc.image}, which has not been built`,
        {
          hint: `run \`grail build ${svc.image}\` (or \`grail up\`, which builds first)`,
        },
      )
    }
    return { ...base, image: { name: image.name, version: image.version, digest: image.digest } }
  })
}

/**
 * Finishes or undoes what a killed apply left half-done: instances that never became healthy are
 * destroyed (undo), instances being drained or stopped are destroyed (finish), a pending release is
 * marked failed. Runs before planning, under the apply lock.
 */
export async function recoverInterrupted(a: ApplyEnv): Promise<string[]> {
  const done: string[] = []
  const undo = new Set<string>()
  for (const r of listReleases(a.db, a.environment).filter((r) => r.status === 'pending')) {
    const healthy = liveInstances(a.db, a.environment, r.service).filter(
      (i) => i.phase === 'healthy' && i.releaseNumber === r.number,
    )
    const replicas =
      a.project.environments[a.environment]?.services[r.service]?.replicas ?? Number.POSITIVE_INFINITY
    if (healthy.length >= replicas) {
      // every new instance was up: finish the rollout; the old release's leftovers are planned away
      const previous = activeRelease(a, r.service)
      if (previous) setReleaseStatus(a.db, r.service, previous.number, 'superseded')
      setReleaseStatus(a.db, r.service, r.number, 'active', 'finished after an interrupted apply')
      done.push(`release ${r.service}#${r.number} finished`)
    } else {
      // otherwise undo it as a whole: its instances go and the plan deploys it again
      setReleaseStatus(a.db, r.service, r.number, 'failed', 'interrupted: apply did not finish')
      undo.add(`${r.service}#${r.number}`)
      done.push(`release ${r.service}#${r.number} undone`)
    }
  }
  const leftovers = liveInstances(a.db, a.environment).filter(
    (rec) => rec.phase !== 'healthy' || undo.has(`${rec.service}#${rec.releaseNumber}`),
  )
  await removeInstances(
    a.db,
    a.provider,
    leftovers.map((rec) => ({ id: rec.id, reason: `interrupted while ${rec.phase}` })),
    { graceMs: 1000 },
  )
  for (const rec of leftovers) done.push(`instance ${rec.id} (${rec.phase})`)
  const hotfixes = markInterruptedHotfixes(a.db, a.environment)
  if (hotfixes > 0)
    done.push(`${hotfixes} hotfix(es) interrupted while running: their changes are not excused`)
  if (done.length) appendEvent(a.db, 'apply.recovered', a.environment, { done })
  return done
}

/** The plan for an environment: pure, from spec, state and what the provider reports. */
export async function planEnvironment(a: ApplyEnv): Promise<Plan> {
  return (await planWithDrift(a)).plan
}

/** The plan, and the drift scan of every instance it was made from (drift is a reason to replace). */
export async function planWithDrift(
  a: ApplyEnv,
  opts: { withDiffs?: boolean } = {},
): Promise<{ plan: Plan; drift: InstanceDrift[] }> {
  const desired = await desiredServices(a)
  const releases: Record<string, ReleaseView[]> = {}
  for (const r of listReleases(a.db, a.environment)) {
    releases[r.service] = [...(releases[r.service] ?? []), r]
  }
  const seen = await observe(a.db, a.provider, { project: a.project.name, environment: a.environment })
  const { views } = seen
  const drift = await scanDrift(a, { withDiffs: opts.withDiffs ?? false, seen })
  const byId = new Map(drift.map((d) => [d.instance, d]))
  for (const v of views) {
    const d = byId.get(v.id)
    if (d !== undefined && v.known && d.unexplained > 0) {
      const summary = driftSummary(d)
      if (summary) v.drift = summary
    }
  }
  const now = Date.now()
  const records = new Map(seen.records.map((r) => [r.id, r]))
  const watched = await watchHealth(
    a,
    views.filter((v) => v.known && v.state === 'running').flatMap((v) => records.get(v.id) ?? []),
    now,
  )
  for (const v of views) {
    const h = watched.get(v.id)
    if (h) v.health = h.unhealthy ? 'unhealthy' : 'healthy'
    if (h?.unhealthy) v.healthDetail = healthDetail(h)
  }
  const viewById = new Map(views.map((v) => [v.id, v]))
  for (const svc of Object.values(a.project.environments[a.environment]?.services ?? {})) {
    const candidates = views
      .filter((v) => v.service === svc.name && v.known && v.state === 'running' && records.has(v.id))
      .map((v) => ({
        id: v.id,
        createdAt: (records.get(v.id) as InstanceRecord).createdAt,
        drift: (byId.get(v.id)?.unexplained ?? 0) + (byId.get(v.id)?.excused ?? 0),
      }))
    for (const [rank, due] of dueForRecycle(svc.recycle, candidates, now).entries()) {
      const v = viewById.get(due.id)
      if (v) v.recycle = { reason: due.reason, rank }
    }
  }
  const revoked = revokedDigests(a.db)
  const history = restartHistory(a, now)
  const logTails = await logTailsOf(
    a,
    views.filter((v) => v.known && (v.state === 'stopped' || v.health === 'unhealthy')),
  )
  return {
    plan: plan({
      environment: a.environment,
      desired,
      releases,
      instances: views,
      revoked,
      now,
      restarts: history,
      logTails,
    }),
    drift,
  }
}

async function contextFor(a: ApplyEnv, svc: ServiceSpec, imageDigest: string): Promise<RolloutContext> {
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
export async function servingOf(a: ApplyEnv, svc: ServiceSpec, release: number): Promise<Serving[]> {
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

function activeRelease(a: ApplyEnv, service: string): ReleaseRecord | null {
  return listReleases(a.db, a.environment, service).find((r) => r.status === 'active') ?? null
}

/** Deploys one release of a service by replacement (used by apply and by rollback). */
export async function deploy(a: ApplyEnv, svc: ServiceSpec, release: ReleaseRecord): Promise<RolloutResult> {
  const ctx = await contextFor(a, svc, release.imageDigest)
  const previous = activeRelease(a, svc.name)
  const serving = previous ? await servingOf(a, svc, previous.number) : []
  return rollOut(ctx, release, { previous, serving })
}

async function execute(a: ApplyEnv, action: Action): Promise<RolloutResult | null> {
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

function startFirst(a: ApplyEnv, service: string): boolean {
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
async function replaceBatch(a: ApplyEnv, batch: Array<Extract<Action, { kind: 'replace' }>>): Promise<void> {
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

/** A new instance of an active release (a replacement or an extra replica) that failed its health gate. */
export interface FailedLaunch {
  service: string
  instance: string
  reason: string
}

/**
 * `grail apply`: recover what a killed run left, plan, and execute the plan action by action. Every
 * published service's router is first pointed at its healthy instances, so a restarted proxy serves.
 */
export async function applyEnvironment(
  a: ApplyEnv,
  opts: { only?: (action: Action) => boolean } = {},
): Promise<{
  plan: Plan
  results: RolloutResult[]
  recovered: string[]
  failed: FailedLaunch[]
  proxies: ProxyReport[]
}> {
  const recovered = [
    ...(await a.provider.reconcile({ project: a.project.name, environment: a.environment })),
    ...(await recoverInterrupted(a)),
  ]
  // proxies no service needs go first: a renamed service may publish its predecessor's port
  const { stopUnneededProxies, superviseProxies } = await import('./proxies.js')
  const proxies = [...(await stopUnneededProxies(a)), ...(await superviseProxies(a))]
  const full = await planEnvironment(a)
  if (!opts.only && full.blocked.length > 0) throw blockedByRevocation(full)
  if (!opts.only && full.builds.length > 0) throw buildNeeded(full)
  const thePlan = opts.only ? { ...full, actions: full.actions.filter(opts.only) } : full
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
  return { plan: thePlan, results, recovered, failed, proxies }
}

/** Where a service's proxy keeps its pid, control socket and routes. */
export function proxyDir(home: GrailHome, environment: string, service: string): string {
  return join(home.root, 'proxy', `${environment}-${service}`)
}
