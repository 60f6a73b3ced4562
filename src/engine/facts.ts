import { type CurrentImage, currentImages, whatChanged } from '../build/current.js'
import { driftSummary, scanDrift } from '../drift/scan.js'
import type { InstanceDrift } from '../drift/types.js'
import type { Digest } from '../oci/digest.js'
import type { DriftFact, HotfixView, ImageView, PlanInput, ReleaseView, ServiceFacts } from '../plan/index.js'
import { configBundleOf, configDigest, desiredServices, promotedReleases } from '../plan/index.js'
import { logTailsOf, restartHistory } from '../rollout/crash-history.js'
import { healthDetail, watchHealth } from '../rollout/observe-health.js'
import { observe } from '../rollout/observe.js'
import { requireEnvironment } from '../spec/environments.js'
import type { Project } from '../spec/types.js'
import type { ImageRecord } from '../state/index.js'
import { listHotfixes, listImages, listReleases, revokedDigests } from '../state/index.js'
import type { EngineEnv } from './types.js'

const imageView = (r: ImageRecord): ImageView => ({
  name: r.name,
  version: r.version,
  digest: r.digest,
  status: r.status,
})

/** Releases of the environment per service. */
function releasesByService(a: EngineEnv): Record<string, ReleaseView[]> {
  const out: Record<string, ReleaseView[]> = {}
  for (const r of listReleases(a.db, a.environment)) out[r.service] = [...(out[r.service] ?? []), r]
  return out
}

/**
 * What the spec, grail.lock and the image catalog say about every service of the environment. The
 * catalog is asked for the version of the build key the spec and its sources give now only where neither
 * the lock nor a promotion decides; when it has none, what changed since the version the service runs is
 * worked out here (it reads the catalog and the sources), for the plan to show.
 */
export async function serviceFacts(
  a: EngineEnv,
  releases: Record<string, ReleaseView[]> = releasesByService(a),
): Promise<ServiceFacts[]> {
  const { project, environment, db, locked } = a
  requireEnvironment(project, environment)
  const env = project.environments[environment] as Project['environments'][string]
  const services = Object.values(env.services)
  const promoted = (service: string) => promotedReleases(releases[service] ?? []).length > 0
  const needed = services.filter((s) => !locked?.[s.image] && !promoted(s.name)).map((s) => s.image)
  const current =
    needed.length > 0 ? await currentImages(a, [...new Set(needed)]) : new Map<string, CurrentImage>()
  return services.map((svc) => {
    const versions = listImages(db, svc.image)
    const pinned = locked?.[svc.image]
    const now = needed.includes(svc.image) ? current.get(svc.image) : undefined
    let cur: ServiceFacts['current']
    if (now?.built) cur = { built: true, image: imageView(now.record) }
    else if (now !== undefined && versions.length > 0) {
      const running = (releases[svc.name] ?? []).find((r) => r.status === 'active')
      const since =
        (running &&
          versions.find((v) => v.name === running.imageName && v.version === running.imageVersion)) ??
        versions[0]
      cur = { built: false, changed: whatChanged(project, db, now, since as ImageRecord) }
    } else if (now !== undefined) cur = { built: false, changed: 'never built' }
    return {
      service: svc.name,
      image: svc.image,
      replicas: svc.replicas,
      configDigest: configDigest(configBundleOf(svc)),
      crashLoop: svc.crashLoop,
      recycle: svc.recycle,
      // `grail drift --fix` replaces what drifted whatever the service's policy says
      ...(a.fixAllDrift || svc.drift.policy === 'fix' ? {} : { driftPolicy: svc.drift.policy }),
      ...(pinned
        ? { locked: { name: pinned.name, version: pinned.version, digest: pinned.digest as Digest } }
        : {}),
      ...(cur ? { current: cur } : {}),
      versions: versions.map(imageView),
    }
  })
}

/**
 * Everything the planner decides from, read once at `now`: the services' facts, the releases, every
 * instance as state and the provider see it, the drift scan (also returned whole, for the drift report),
 * Grail's health probes of the running instances, the hotfixes, revoked images, restart history and the
 * log tails of crashed or unhealthy instances.
 */
export async function gatherFacts(
  a: EngineEnv,
  opts: { now: number; withDiffs?: boolean },
): Promise<{ input: PlanInput; drift: InstanceDrift[] }> {
  const { now } = opts
  const releases = releasesByService(a)
  const services = await serviceFacts(a, releases)
  // a service with nothing it may run (IMAGE_REVOKED, IMAGE_NOT_BUILT) fails before any instance is probed
  desiredServices(a.environment, services, releases)
  const seen = await observe(a.db, a.provider, { project: a.project.name, environment: a.environment })
  const { views } = seen
  const drift = await scanDrift(a, { withDiffs: opts.withDiffs ?? false, seen, now })
  // the scan counts an expired hotfix as drift; whether it has expired is the planner's to decide
  const driftFacts: Record<string, DriftFact> = {}
  for (const d of drift) {
    const hotfix = d.expiredHotfix !== undefined ? 1 : 0
    driftFacts[d.instance] = {
      findings: d.unexplained - hotfix + d.excused,
      summary: d.unexplained - hotfix > 0 ? driftSummary({ ...d, expiredHotfix: undefined }) : '',
    }
  }
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
    const rec = records.get(v.id)
    if (rec) v.createdAt = rec.createdAt
  }
  const hotfixes: HotfixView[] = listHotfixes(a.db, { environment: a.environment }).map((h) => ({
    id: h.id,
    instance: h.instance,
    expiresAt: h.expiresAt,
  }))
  const logTails = await logTailsOf(
    a,
    views.filter((v) => v.known && (v.state === 'stopped' || v.health === 'unhealthy')),
  )
  return {
    input: {
      environment: a.environment,
      now,
      services,
      releases,
      instances: views,
      drift: driftFacts,
      hotfixes,
      revoked: revokedDigests(a.db),
      restarts: restartHistory(a, now),
      logTails,
    },
    drift,
  }
}
