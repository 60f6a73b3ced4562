/**
 * The patch pipeline of `grail serve` (`policies.patch`): check the Debian archive for newer packages
 * than the images that matter have (`grail outdated`), then report, build, or build and deploy to the
 * named environments. Every decision is made again from state on each run (the catalog, the releases,
 * the event log), so a run killed at any point is finished by the next one, and nothing is done twice.
 */
import { buildOrder } from '../build/builder.js'
import { runBuild } from '../build/engine.js'
import { applyEnvironment } from '../engine/apply.js'
import { GrailError } from '../errors.js'
import { writeLock } from '../lifecycle/lock.js'
import {
  DEFAULT_PATCH_INTERVAL,
  type OutdatedImage,
  type OutdatedReport,
  type PackageUpdate,
  outdatedReport,
} from '../lifecycle/outdated.js'
import { openStore } from '../oci/store.js'
import { promotedReleases } from '../plan/index.js'
import type { PatchPolicy, Project } from '../spec/types.js'
import { appendEvent, latestImage, listReleases } from '../state/index.js'
import type { Db } from '../state/index.js'
import type { ServerContext } from './context.js'

/** Why a patch build or deploy happened: the package updates it takes in, the base image that moved on. */
export interface PatchCause {
  packages: Array<Pick<PackageUpdate, 'package' | 'locked' | 'available' | 'security' | 'suite'>>
  base: string | null
}

/** One image the pipeline built. */
export interface PatchBuild {
  image: string
  /** the version whose findings caused it */
  from: number
  version: number
  digest: string
  /** the build gave the version there already: the archive's newer version did not go in */
  unchanged: boolean
  cause: PatchCause
}

/** One environment the pipeline applied. */
export interface PatchDeploy {
  environment: string
  services: Array<{ service: string; image: string; from: number; to: number }>
  ok: boolean
  /** the rollouts' reasons, when one failed */
  errors: string[]
  cause: PatchCause
}

/** What one run of the pipeline found and did. */
export interface PatchOutcome {
  at: string
  policy: PatchPolicy
  report: OutdatedReport
  /** findings reported (event `patch.outdated`) for the first time in this run */
  reported: Array<{ image: string; version: number; updates: PackageUpdate[]; base: string | null }>
  built: PatchBuild[]
  deployed: PatchDeploy[]
  /** environments left for the next run, and why (another process holds the apply lock) */
  deferred: Array<{ environment: string; reason: string }>
}

const DEFAULT_POLICY: PatchPolicy = { interval: DEFAULT_PATCH_INTERVAL, action: 'report', security: false }

/** The project's `policies.patch`, defaults filled in: `interval` is how often the daemon calls runPatchPolicy. */
export function patchPolicyOf(project: Project): PatchPolicy {
  return project.policies.patch ?? DEFAULT_POLICY
}

/** The updates the policy acts on: all, or only those from the security archive. */
function actionable(i: OutdatedImage, policy: PatchPolicy): PackageUpdate[] {
  return policy.security ? i.updates.filter((u) => u.security) : i.updates
}

function causeOf(updates: PackageUpdate[], base: string | null): PatchCause {
  return {
    packages: updates.map((u) => ({
      package: u.package,
      locked: u.locked,
      available: u.available,
      security: u.security,
      suite: u.suite,
    })),
    base,
  }
}

/** The data of every earlier event of `kind` about `subject`. */
function eventsAbout(db: Db, kind: string, subject: string): Array<Record<string, unknown>> {
  return (
    db
      .prepare('SELECT data FROM events WHERE kind = ? AND subject = ? ORDER BY id')
      .all(kind, subject) as Array<{
      data: string
    }>
  ).map((r) => JSON.parse(r.data) as Record<string, unknown>)
}

const fingerprint = (c: PatchCause): string =>
  JSON.stringify([c.packages.map((p) => `${p.package}=${p.available}`).sort(), c.base])

/** Appends `patch.outdated` for each finding not reported before: a finding is reported once. */
function reportFindings(db: Db, report: OutdatedReport, policy: PatchPolicy): PatchOutcome['reported'] {
  const out: PatchOutcome['reported'] = []
  for (const i of report.images) {
    const subject = `${i.image}@${i.version}`
    const seen = new Set<string>()
    for (const e of eventsAbout(db, 'patch.outdated', subject)) {
      for (const u of (e.updates as PackageUpdate[] | undefined) ?? [])
        seen.add(`${u.package}=${u.available}`)
      if (typeof e.base === 'string') seen.add(`base:${e.base}`)
    }
    const updates = actionable(i, policy).filter((u) => !seen.has(`${u.package}=${u.available}`))
    const base = i.baseOutdated && !seen.has(`base:${i.baseOutdated.cause}`) ? i.baseOutdated.cause : null
    if (updates.length === 0 && base === null) continue
    appendEvent(db, 'patch.outdated', subject, {
      image: i.image,
      version: i.version,
      digest: i.digest,
      updates,
      base,
      runningIn: i.runningIn,
    })
    out.push({ image: i.image, version: i.version, updates, base })
  }
  return out
}

/** The pins of a debian base's `include` that an actionable update moves (package → newer version). */
function upgradesFor(project: Project, image: string, updates: PackageUpdate[]): Record<string, string> {
  const base = project.images[image]?.base
  if (base?.kind !== 'debian') return {}
  const pinned = new Set(base.include.filter((p) => p.includes('=')).map((p) => p.slice(0, p.indexOf('='))))
  return Object.fromEntries(updates.filter((u) => pinned.has(u.package)).map((u) => [u.package, u.available]))
}

/**
 * Finishes what a run killed during a patch build left: a `patch.build` with no `patch.built` after it
 * whose image has a newer version now (the build got as far as recording it) gets its grail.lock entry
 * and its `patch.built` (`recovered: true`). One whose build did not get that far needs nothing: its
 * finding is still there, and this run builds it.
 */
async function finishInterruptedBuilds(ctx: ServerContext, project: Project): Promise<PatchBuild[]> {
  const rows = ctx.db
    .prepare(
      "SELECT kind, subject, data FROM events WHERE kind IN ('patch.build', 'patch.built') ORDER BY id",
    )
    .all() as Array<{ kind: string; subject: string; data: string }>
  const open = new Map<string, Record<string, unknown>>()
  for (const r of rows) {
    if (r.kind === 'patch.build') open.set(r.subject, JSON.parse(r.data) as Record<string, unknown>)
    else open.delete(r.subject)
  }
  const finished: PatchBuild[] = []
  for (const [subject, started] of open) {
    const name = String(started.image)
    const from = Number(started.from)
    const newest = latestImage(ctx.db, name)
    if (!newest || newest.version <= from || !project.images[name]) continue
    const store = await openStore(ctx.home.oci, ctx.home.tmp)
    await writeLock(project, store, [
      {
        name,
        version: newest.version,
        digest: newest.digest,
        buildKey: newest.buildKey,
        size: newest.size,
        unchanged: false,
        record: newest,
        steps: [],
      },
    ])
    const record: PatchBuild = {
      image: name,
      from,
      version: newest.version,
      digest: newest.digest,
      unchanged: false,
      cause: started.cause as PatchCause,
    }
    appendEvent(ctx.db, 'patch.built', subject, { ...record, recovered: true })
    finished.push(record)
  }
  return finished
}

/**
 * Builds a new version of every image of the spec whose newest version has updates the policy acts on
 * (a debian base: bootstrapped again, pins moved to the newer versions, spec and cache keys unchanged)
 * or whose base image was rebuilt (in this run or before), parents first. A finding whose build gave
 * the same image once is not built again (the build cannot take the update in: a pin the spec holds
 * elsewhere, a mirror without the security suite); the event says so.
 */
async function buildPatched(
  ctx: ServerContext,
  project: Project,
  report: OutdatedReport,
  policy: PatchPolicy,
): Promise<PatchBuild[]> {
  const built: PatchBuild[] = []
  const rebuilt = new Set<string>()
  let store: Awaited<ReturnType<typeof openStore>> | undefined
  for (const spec of buildOrder(project)) {
    const newest = report.images.find((i) => i.image === spec.name && i.newest)
    if (!newest) continue
    const parent = spec.base.kind === 'image' ? spec.base.image : null
    const updates = actionable(newest, policy)
    let cause: PatchCause | null = null
    if (spec.base.kind === 'debian' && updates.length > 0) cause = causeOf(updates, null)
    else if (parent !== null && rebuilt.has(parent)) {
      const now = latestImage(ctx.db, parent)
      cause = causeOf(updates, `base image ${parent} rebuilt${now ? `: v${now.version}` : ''}`)
    } else if (parent !== null && newest.baseOutdated) cause = causeOf(updates, newest.baseOutdated.cause)
    if (cause === null) continue
    const subject = `${spec.name}@${newest.version}`
    const tried = eventsAbout(ctx.db, 'patch.built', subject).some(
      (e) => e.unchanged === true && fingerprint(e.cause as PatchCause) === fingerprint(cause),
    )
    if (tried) continue
    const refresh = spec.base.kind === 'debian'
    ctx.log.info({ image: spec.name, from: newest.version, cause }, 'patch: building')
    appendEvent(ctx.db, 'patch.build', subject, { image: spec.name, from: newest.version, cause })
    let outcome: Awaited<ReturnType<typeof runBuild>>
    try {
      outcome = await runBuild({
        project,
        home: ctx.home,
        images: [spec.name],
        ...(refresh ? { refresh: true, upgrades: upgradesFor(project, spec.name, updates) } : {}),
      })
    } catch (err) {
      // the log says the build failed and why; the finding stays, and the next run tries again
      appendEvent(ctx.db, 'patch.built', subject, {
        image: spec.name,
        from: newest.version,
        cause,
        error: err instanceof Error ? err.message : String(err),
      })
      throw err
    }
    const b = outcome.images.find((i) => i.name === spec.name)
    if (!b) throw new Error(`patch: the build of ${spec.name} returned no image (this is a bug)`)
    const unchanged = b.digest === newest.digest
    if (!unchanged) {
      rebuilt.add(spec.name)
      store ??= await openStore(ctx.home.oci, ctx.home.tmp)
      await writeLock(project, store, [b])
    }
    const record: PatchBuild = {
      image: spec.name,
      from: newest.version,
      version: b.version,
      digest: b.digest,
      unchanged,
      cause,
    }
    appendEvent(ctx.db, 'patch.built', subject, { ...record })
    built.push(record)
  }
  return built
}

/**
 * Applies each environment of `policies.patch.deploy` whose services run an image version with findings
 * the policy acts on while a newer version of that image exists: only those services' actions, under
 * the apply lock. An environment whose lock is held is left for the next run.
 */
async function deployPatched(
  ctx: ServerContext,
  project: Project,
  report: OutdatedReport,
  policy: PatchPolicy,
  now: number,
): Promise<Pick<PatchOutcome, 'deployed' | 'deferred'>> {
  const deployed: PatchDeploy[] = []
  const deferred: PatchOutcome['deferred'] = []
  for (const environment of policy.deploy ?? []) {
    const env = project.environments[environment]
    if (!env) continue
    const services: PatchDeploy['services'] = []
    const updates: PackageUpdate[] = []
    const bases: string[] = []
    for (const svc of Object.values(env.services)) {
      const releases = listReleases(ctx.db, environment, svc.name)
      const active = releases.find((r) => r.status === 'active')
      // never deployed here, or it runs only what is promoted to it
      if (!active || promotedReleases(releases).length > 0) continue
      const running = report.images.find((i) => i.digest === active.imageDigest)
      const newest = latestImage(ctx.db, svc.image)
      if (!running || !newest || newest.digest === running.digest || newest.version < running.version)
        continue
      const found = actionable(running, policy)
      if (found.length === 0 && running.baseOutdated === null) continue
      services.push({ service: svc.name, image: svc.image, from: running.version, to: newest.version })
      updates.push(...found.filter((u) => !updates.some((x) => x.package === u.package)))
      if (running.baseOutdated) bases.push(running.baseOutdated.cause)
    }
    if (services.length === 0) continue
    const cause = causeOf(updates, bases.length > 0 ? [...new Set(bases)].join('; ') : null)
    // a deploy of these versions is done once: a failed rollout, or an apply that changed nothing (the
    // spec builds another version now), is not repeated every interval; a new version or `grail apply` moves on
    const key = JSON.stringify(services.map((s) => [s.service, s.from, s.to]))
    const doneBefore = eventsAbout(ctx.db, 'patch.deployed', environment).some(
      (e) =>
        JSON.stringify((e.services as PatchDeploy['services']).map((s) => [s.service, s.from, s.to])) === key,
    )
    if (doneBefore) continue
    const names = new Set(services.map((s) => s.service))
    ctx.log.info({ environment, services, cause }, 'patch: deploying')
    let result: Awaited<ReturnType<typeof applyEnvironment>>
    try {
      result = await ctx.withEnvironment(environment, { lock: true }, (a) => {
        // under the lock: the event says what is about to change, and why, before anything does
        appendEvent(ctx.db, 'patch.deploy', environment, { environment, services, cause })
        return applyEnvironment(a, { only: (action) => names.has(action.service), now })
      })
    } catch (err) {
      if (err instanceof GrailError && err.code === 'LOCKED') {
        deferred.push({ environment, reason: err.message })
        continue
      }
      throw err
    }
    const errors = [
      ...result.results.filter((r) => !r.ok).map((r) => `${r.release.service}: ${r.reason ?? 'rolled back'}`),
      ...result.failed.map((f) => JSON.stringify(f)),
    ]
    const record: PatchDeploy = { environment, services, ok: errors.length === 0, errors, cause }
    appendEvent(ctx.db, 'patch.deployed', environment, { ...record })
    deployed.push(record)
    ctx.reconcileSoon(environment)
  }
  return { deployed, deferred }
}

/**
 * One run of `policies.patch` at `now` (the daemon calls it every `interval`): the outdated check (the
 * same `outdatedReport` as `grail outdated`), an event `patch.outdated` per finding not reported before,
 * then with `build` a new version of each affected image (`patch.build` with its cause, `patch.built`
 * when done), and with `deploy` the environments of `deploy` applied for the services that run an
 * outdated version (`patch.deploy` with the cause, `patch.deployed` with the outcome), never any other
 * environment. Archive failures (ARCHIVE_*) and build failures are thrown for the daemon to log; what was
 * done before them is in the event log, and the next run carries on from there.
 */
export async function runPatchPolicy(ctx: ServerContext, now: number): Promise<PatchOutcome> {
  const project = ctx.project()
  const policy = patchPolicyOf(project)
  let report = await outdatedReport({ project, home: ctx.home, db: ctx.db, now, maxAgeMs: policy.interval })
  const reported = reportFindings(ctx.db, report, policy)
  const outcome: PatchOutcome = {
    at: new Date(now).toISOString(),
    policy,
    report,
    reported,
    built: [],
    deployed: [],
    deferred: [],
  }
  if (policy.action === 'report') return outcome
  const recovered = await finishInterruptedBuilds(ctx, project)
  outcome.built = [...recovered, ...(await buildPatched(ctx, project, report, policy))]
  if (policy.action === 'deploy') {
    // what runs where is judged against the catalog as the builds left it
    if (outcome.built.length > 0)
      report = await outdatedReport({ project, home: ctx.home, db: ctx.db, now, maxAgeMs: policy.interval })
    Object.assign(outcome, await deployPatched(ctx, project, report, policy, now))
  }
  return outcome
}
