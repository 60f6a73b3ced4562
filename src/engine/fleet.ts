import type { Project } from '../spec/types.js'
import type { Db, HotfixChange, HotfixRecord } from '../state/index.js'
import { listHotfixes, listReleases } from '../state/index.js'

/** One environment of the project: its provider and the services it runs. */
export interface EnvironmentSummary {
  name: string
  provider: string
  services: string[]
}

/** The project's environments, in the spec's order. */
export function environmentList(project: Project): EnvironmentSummary[] {
  return Object.values(project.environments).map((e) => ({
    name: e.name,
    provider: e.provider,
    services: Object.keys(e.services),
  }))
}

/** What drift does to an instance of a service: replace it (`fix`), only say so (`report`), or nothing. */
export type DriftPolicy = 'fix' | 'report' | 'ignore'

/** A service of an environment as the fleet view shows it: spec, active release, recycling, drift policy. */
export interface ServiceSummary {
  name: string
  image: string
  replicas: number
  /** the active release, or null when none has passed its gate here */
  activeRelease: {
    number: number
    imageName: string
    imageVersion: number
    imageDigest: string
    createdAt: string
    promotedFrom: string | null
  } | null
  /** recycle.maxAge in ms, or null when the service is not recycled by age */
  maxAgeMs: number | null
  driftPolicy: DriftPolicy
  /** `host:port` the proxy publishes it on, or null */
  publish: string | null
}

/** The services of `environment` with what runs of each: the fleet page's rows. */
export function serviceSummaries(db: Db, project: Project, environment: string): ServiceSummary[] {
  const releases = listReleases(db, environment)
  return Object.values(project.environments[environment]?.services ?? {}).map((s) => {
    const active = releases.find((r) => r.service === s.name && r.status === 'active')
    // a spec without a drift policy replaces drifted instances
    const policy = 'policy' in s.drift && typeof s.drift.policy === 'string' ? s.drift.policy : 'fix'
    return {
      name: s.name,
      image: s.image,
      replicas: s.replicas,
      activeRelease: active
        ? {
            number: active.number,
            imageName: active.imageName,
            imageVersion: active.imageVersion,
            imageDigest: active.imageDigest,
            createdAt: active.createdAt,
            promotedFrom: active.promotedFrom,
          }
        : null,
      maxAgeMs: s.recycle.maxAge ?? null,
      driftPolicy: policy as DriftPolicy,
      publish: s.publish ? `${s.publish.host}:${s.publish.port}` : null,
    }
  })
}

/** A hotfix as the API lists it: the record, whether its TTL still runs, and the paths it changed. */
export interface HotfixSummary extends Omit<HotfixRecord, 'changes'> {
  /** recorded and its TTL has not ended: its drift is excused */
  live: boolean
  files: HotfixChange[]
}

/** Every hotfix, newest first, live ones marked (at `now`). */
export function hotfixSummaries(db: Db, now: number = Date.now()): HotfixSummary[] {
  return listHotfixes(db)
    .reverse()
    .map(({ changes, ...h }) => ({
      ...h,
      live: h.status === 'recorded' && Date.parse(h.expiresAt) > now,
      files: changes,
    }))
}
