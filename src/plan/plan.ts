import { type CrashLoop, type RestartView, crashLoopOf } from './crash-loop.js'
import { desiredServices } from './desired.js'
import { type PromotedChoice, choosePromoted } from './promoted.js'
import { dueForRecycle } from './recycle.js'
import type {
  Action,
  Blocked,
  DeployCause,
  DesiredService,
  DriftFact,
  DriftKept,
  HotfixView,
  InstanceView,
  PendingBuild,
  Plan,
  ReleaseView,
  ReplaceCause,
  ServiceFacts,
  Waiting,
} from './types.js'

/**
 * Everything the planner decides from, gathered beforehand (engine/facts.ts): what the spec, the lock
 * and the catalog say per service, what state recorded, what the provider, the drift scan and the health
 * probes observed, and the time. Nothing here is read again while planning.
 */
export interface PlanInput {
  environment: string
  /** epoch milliseconds: recycling, hotfix expiry and crash-loop backoff are judged at this instant */
  now: number
  /** the services of the environment as the spec names them */
  services: ServiceFacts[]
  /** releases per service, any order */
  releases: Record<string, ReleaseView[]>
  /** every instance, as state and the provider see it together, with its health */
  instances: InstanceView[]
  /** the drift scan of each instance it looked at (the healthy ones state knows), by instance id */
  drift?: Record<string, DriftFact>
  /** the hotfixes recorded in the environment, any order */
  hotfixes?: HotfixView[]
  /** revoked image digests with the reason (see ActionsInput) */
  revoked?: Record<string, string>
  /** involuntary restarts per service */
  restarts?: Record<string, RestartView[]>
  /** the last lines of the log of crashed or unhealthy instances, by instance id */
  logTails?: Record<string, string[]>
}

/**
 * The plan for an environment: pure, the same for the same input and `now` (a daemon planning every few
 * seconds gets what `grail plan` shows). It chooses what each service should run, marks the instances
 * whose drift or expired hotfix makes them due for replacement and those due for recycling, and lists the
 * actions that converge the environment, each with its reason.
 */
export function plan(input: PlanInput): Plan {
  const desired = desiredServices(input.environment, input.services, input.releases)
  const driftKept: DriftKept[] = []
  const instances = input.instances.map((v) => withDrift(v, input, driftKept))
  markRecycling(instances, input)
  const planned = planActions({
    environment: input.environment,
    desired,
    releases: input.releases,
    instances,
    now: input.now,
    ...(input.revoked ? { revoked: input.revoked } : {}),
    ...(input.restarts ? { restarts: input.restarts } : {}),
    ...(input.logTails ? { logTails: input.logTails } : {}),
  })
  return driftKept.length > 0 ? { ...planned, driftKept } : planned
}

/** The newest hotfix of an instance whose TTL has ended at `now`, if any. */
export function expiredHotfix(
  hotfixes: readonly HotfixView[],
  instance: string,
  now: number,
): HotfixView | undefined {
  return hotfixes
    .filter((h) => h.instance === instance && Date.parse(h.expiresAt) <= now)
    .reduce<HotfixView | undefined>((last, h) => (last === undefined || h.id > last.id ? h : last), undefined)
}

/**
 * An instance with the drift that makes it due for replacement: unexplained findings (unless its
 * service's drift policy keeps them: then they go to `kept`), an expired hotfix (whatever the policy).
 */
function withDrift(v: InstanceView, input: PlanInput, kept: DriftKept[]): InstanceView {
  const d = input.drift?.[v.id]
  if (!v.known || d === undefined) return { ...v }
  const expired = expiredHotfix(input.hotfixes ?? [], v.id, input.now)
  const policy = input.services.find((s) => s.service === v.service)?.driftPolicy ?? 'fix'
  const keep = policy !== 'fix' && d.summary !== ''
  if (keep) kept.push({ service: v.service, instance: v.id, policy, drift: d.summary })
  const summary = [keep ? '' : d.summary, expired ? `hotfix #${expired.id} expired` : '']
    .filter((s) => s !== '')
    .join('; ')
  return summary ? { ...v, drift: summary } : { ...v }
}

/** Marks the running instances each service's recycle policy makes due at `now`, with their order. */
function markRecycling(views: InstanceView[], input: PlanInput): void {
  const byId = new Map(views.map((v) => [v.id, v]))
  for (const svc of input.services) {
    if (!svc.recycle) continue
    const candidates = views
      .filter(
        (v) => v.service === svc.service && v.known && v.state === 'running' && v.createdAt !== undefined,
      )
      .map((v) => {
        const d = input.drift?.[v.id]
        const expired = d && expiredHotfix(input.hotfixes ?? [], v.id, input.now) ? 1 : 0
        return { id: v.id, createdAt: v.createdAt as string, drift: (d?.findings ?? 0) + expired }
      })
    for (const [rank, due] of dueForRecycle(svc.recycle, candidates, input.now).entries()) {
      const v = byId.get(due.id)
      if (v) v.recycle = { reason: due.reason, rank }
    }
  }
}

/** What the last step of planning works from: the desired state already chosen, the instances marked. */
export interface ActionsInput {
  environment: string
  desired: DesiredService[]
  /** releases per service, any order */
  releases: Record<string, ReleaseView[]>
  instances: InstanceView[]
  /**
   * revoked image digests with the reason (with `--cascade`, those built on a revoked one): a release
   * running one is replaced, in a promoted-to environment by its newest promotion that is not revoked
   */
  revoked?: Record<string, string>
  /** epoch milliseconds; crash-loop detection needs it */
  now?: number
  /** involuntary restarts per service (replacements of crashed or unhealthy instances, failed gates) */
  restarts?: Record<string, RestartView[]>
  /** the last lines of the log of crashed or unhealthy instances, by instance id */
  logTails?: Record<string, string[]>
}

function shortDigest(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12)
}

/** How a promoted release is named in a reason: `release #4 (promoted from staging#3)`. */
function promotedNote(choice: PromotedChoice | null): string {
  if (choice?.kind !== 'run') return ''
  return ` of release #${choice.release.number} (promoted from ${choice.release.promotedFrom})`
}

/** Why a service needs a new release, or null when its active release already matches the spec. */
function deployReason(
  want: DesiredService & { image: NonNullable<DesiredService['image']> },
  active: ReleaseView | undefined,
  revoked: Record<string, string>,
  choice: PromotedChoice | null,
): { cause: DeployCause; reason: string } | null {
  const image = `image ${want.image.name} v${want.image.version} (${shortDigest(want.image.digest)})${promotedNote(choice)}`
  if (!active) return { cause: 'first', reason: `new release: first deploy${choice ? `: ${image}` : ''}` }
  const why = revoked[active.imageDigest]
  if (why !== undefined && active.imageDigest !== want.image.digest) {
    return {
      cause: 'revoked',
      reason: `new release: the running image ${shortDigest(active.imageDigest)} is revoked (${why}); ${image} replaces it`,
    }
  }
  if (active.imageDigest !== want.image.digest) {
    return { cause: 'image', reason: `new release: ${image} replaces ${shortDigest(active.imageDigest)}` }
  }
  if (active.configDigest !== want.configDigest)
    return { cause: 'config', reason: 'new release: config changed' }
  return null
}

/** Why a current instance must be replaced now (not counting routine recycling), or null. */
function replaceReason(inst: InstanceView): { cause: ReplaceCause; reason: string } | null {
  if (inst.state === 'missing') return { cause: 'missing', reason: 'missing' }
  if (inst.state === 'stopped') return { cause: 'crashed', reason: 'crashed: process exited' }
  const unhealthy =
    inst.health === 'unhealthy' ? `unhealthy: ${inst.healthDetail ?? 'health check failing'}` : null
  // changed by hand is the cause, not the app: drift does not count towards a crash loop
  if (inst.drift)
    return { cause: 'drift', reason: `drift: ${inst.drift}${unhealthy ? ` (also ${unhealthy})` : ''}` }
  if (unhealthy) return { cause: 'unhealthy', reason: unhealthy }
  return null
}

/**
 * The last step of planning: from what each service should run, what state recorded and how the
 * instances are marked, the list of actions that converges them, each with its reason.
 */
export function planActions(input: ActionsInput): Plan {
  const actions: Action[] = []
  const waiting: Waiting[] = []
  const blocked: Blocked[] = []
  const builds = new Map<string, PendingBuild>()
  const wanted = new Set(input.desired.map((d) => d.service))
  for (const want of input.desired) {
    const releases = input.releases[want.service] ?? []
    const active = releases.filter((r) => r.status === 'active').sort((a, b) => b.number - a.number)[0]
    const mine = input.instances.filter((i) => i.service === want.service)
    if (want.build) {
      // the image the spec builds is not in the catalog: no release until it is built (what runs is kept
      // healthy meanwhile); deploying the newest build instead would run what the spec no longer says
      const b = builds.get(want.build.image) ?? {
        image: want.build.image,
        services: [],
        reason: want.build.reason,
      }
      b.services.push(want.service)
      builds.set(want.build.image, b)
    }
    const revoked = input.revoked ?? {}
    const choice = want.promoted
      ? choosePromoted({ environment: input.environment, want, releases, active, revoked })
      : null
    if (choice?.kind === 'blocked') {
      // nothing allowed here may replace a revoked image: no new instance of it either, and apply refuses
      blocked.push(choice.blocked)
      continue
    }
    const chosen = choice?.release
    const image = want.build
      ? null
      : chosen
        ? { name: chosen.imageName, version: chosen.imageVersion, digest: chosen.imageDigest }
        : want.image
    const why = image ? deployReason({ ...want, image }, active, revoked, choice) : null
    const reason = why?.reason ?? null
    if (why && image) {
      actions.push({
        kind: 'deploy',
        service: want.service,
        from: active?.number ?? null,
        image,
        configDigest: want.configDigest,
        cause: why.cause,
        reason: why.reason,
      })
    } else if (active) {
      const current = mine.filter((i) => i.known && i.release === active.number)
      const recycle: InstanceView[] = []
      const loop = crashLoopFor(want, active.number, input)
      const hold = (instance: string | null, reason: string) =>
        waiting.push({
          service: want.service,
          instance,
          reason,
          nextAttemptAt: new Date((loop as CrashLoop).nextAttemptAt).toISOString(),
          log: (instance !== null ? input.logTails?.[instance] : undefined) ?? [],
        })
      for (const inst of current) {
        const why = replaceReason(inst)
        if (why && loop && (why.cause === 'crashed' || why.cause === 'unhealthy')) {
          // a crash-looping release: back off instead of replacing what dies again at once
          if (loop.waiting) {
            hold(inst.id, `${why.reason}; ${loop.summary}`)
            continue
          }
          why.reason = `${why.reason}; ${loop.summary}`
        }
        if (why)
          actions.push({
            kind: 'replace',
            service: want.service,
            instance: inst.id,
            release: active.number,
            ...why,
          })
        else if (inst.recycle) recycle.push(inst)
      }
      // routine replacement last, in the order the recycle policy asks for (oldest or most drifted first)
      for (const inst of recycle.sort((a, b) => (a.recycle?.rank ?? 0) - (b.recycle?.rank ?? 0))) {
        actions.push({
          kind: 'replace',
          service: want.service,
          instance: inst.id,
          release: active.number,
          cause: 'recycle',
          reason: inst.recycle?.reason ?? 'recycle',
        })
      }
      // replacements are one for one: the count only changes by scaling
      const total = current.length
      if (total < want.replicas && loop?.waiting) {
        hold(null, `${total} of ${want.replicas} replicas; ${loop.summary}`)
      } else if (total < want.replicas) {
        actions.push({
          kind: 'scale-up',
          service: want.service,
          release: active.number,
          count: want.replicas - total,
          reason: `${total} of ${want.replicas} replicas`,
        })
      } else if (total > want.replicas) {
        const surplus = current
          .slice()
          .sort((a, b) => (a.id < b.id ? -1 : 1))
          .slice(0, total - want.replicas)
          .map((i) => i.id)
        actions.push({
          kind: 'scale-down',
          service: want.service,
          instances: surplus,
          reason: `${total} of ${want.replicas} replicas`,
        })
      }
    }
    // instances of older releases outlive a finished rollout only by accident (a killed apply)
    if (!reason && active) {
      for (const inst of mine.filter((i) => i.known && i.release !== active.number)) {
        actions.push({
          kind: 'destroy',
          service: want.service,
          instance: inst.id,
          cause: 'superseded',
          reason: `superseded: release ${inst.release} < active ${active.number}`,
        })
      }
    }
  }
  for (const inst of input.instances) {
    if (!inst.known)
      actions.push({
        kind: 'destroy',
        service: inst.service,
        instance: inst.id,
        cause: 'orphan',
        reason: 'orphan: not in Grail state',
      })
    else if (!wanted.has(inst.service)) {
      actions.push({
        kind: 'destroy',
        service: inst.service,
        instance: inst.id,
        cause: 'removed',
        reason: `removed: service ${inst.service} is no longer in the spec`,
      })
    }
  }
  return { environment: input.environment, actions, waiting, builds: [...builds.values()], blocked }
}

/** The crash loop of a service's active release, when the input allows telling (a `now` and a policy). */
function crashLoopFor(want: DesiredService, release: number, input: ActionsInput): CrashLoop | null {
  if (!want.crashLoop || input.now === undefined) return null
  return crashLoopOf(want.crashLoop, input.restarts?.[want.service] ?? [], release, input.now)
}
