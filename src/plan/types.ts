import type { Digest } from '../oci/digest.js'
import type { CrashLoopSpec, DriftPolicy, RecycleSpec } from '../spec/types.js'

/** What a service should run in one environment, worked out from the spec and the image catalog. */
export interface DesiredService {
  service: string
  replicas: number
  /**
   * the image version to run; null when none can be named until a build (see `build`), or when the
   * environment runs what is promoted to it (see `promoted`)
   */
  image: { name: string; version: number; digest: Digest } | null
  configDigest: Digest
  /** when restarts make a crash loop (absent: never) */
  crashLoop?: CrashLoopSpec
  /** the spec builds an image the catalog does not have yet: no new release until it is built */
  build?: { image: string; reason: string }
  /**
   * the environment receives promotions of this service: it runs its newest promoted release whose image
   * is not revoked (the planner picks it from the releases), never the spec's build
   */
  promoted?: boolean
}

/** A service the plan cannot converge: what it runs is revoked and nothing allowed there replaces it. */
export interface Blocked {
  service: string
  /** the revoked image named in the reason */
  image: { name: string; version: number; digest: Digest }
  /** names the environment, the service and the revoked image */
  reason: string
  /** how to unblock it (promote a good release, unrevoke) */
  hint: string
}

/** An image that must be built before its services can be deployed (sources or spec changed). */
export interface PendingBuild {
  image: string
  services: string[]
  /** e.g. `sources changed since v1 (site/index.html)` */
  reason: string
}

/** A release as state records it. */
export interface ReleaseView {
  number: number
  imageDigest: Digest
  configDigest: Digest
  imageName: string
  imageVersion: number
  status: 'pending' | 'active' | 'superseded' | 'failed' | 'rolled-back'
  /** `ENV#NUMBER` it was promoted from, or null for a release made from the spec */
  promotedFrom: string | null
}

/** One instance as state and the provider see it together. */
export interface InstanceView {
  id: string
  service: string
  /** release number from the instance's labels */
  release: number
  /** state knows this instance (false: an orphan the provider found) */
  known: boolean
  /** what the provider reports */
  state: 'created' | 'running' | 'stopped' | 'missing'
  health: 'healthy' | 'unhealthy' | 'unknown'
  /** what the failing probes saw, when unhealthy: "HTTP 404, 3 probes in a row" */
  healthDetail?: string
  /** unexplained drift (or an expired hotfix), summarised: the instance is replaced */
  drift?: string
  /** due for routine replacement (recycle.maxAge): why, and its place in the recycle order */
  recycle?: { reason: string; rank: number }
  /** when state recorded the instance (known instances only): recycling goes by its age */
  createdAt?: string
}

/** An image version of the catalog, as the planner sees it. */
export interface ImageView {
  name: string
  version: number
  digest: Digest
  status: 'active' | 'deprecated' | 'revoked'
}

/** What the spec, the lock and the image catalog say about one service of the environment. */
export interface ServiceFacts {
  service: string
  /** the image the spec names */
  image: string
  replicas: number
  configDigest: Digest
  crashLoop?: CrashLoopSpec
  recycle?: RecycleSpec
  /** what unexplained drift makes the plan do (absent: `fix`, replace the instance) */
  driftPolicy?: DriftPolicy
  /** `apply --locked`: the version grail.lock pins */
  locked?: { name: string; version: number; digest: Digest }
  /**
   * the catalog's version for the build key the spec and its sources give now (`built`), or what changed
   * since the version the service runs (`changed`) when the catalog has none; absent when it was not
   * looked up (the lock or a promotion decides)
   */
  current?: { built: true; image: ImageView } | { built: false; changed: string }
  /** every version of the image in the catalog (not collected), any order */
  versions: ImageView[]
}

/** What the drift scan found on one instance, not counting hotfix expiry (the planner decides that). */
export interface DriftFact {
  /** unexplained and excused findings: the order of `recycle.order: most-drifted` */
  findings: number
  /** why the instance counts as drifted (unexplained findings), or '' when nothing unexplained is shown */
  summary: string
}

/** A recorded hotfix of an instance; after `expiresAt` its instance is replaced. */
export interface HotfixView {
  id: number
  instance: string
  /** ISO time its TTL ends */
  expiresAt: string
}

export type Action =
  | {
      kind: 'deploy'
      service: string
      from: number | null
      image: NonNullable<DesiredService['image']>
      configDigest: Digest
      /** why, as data: a first deploy, a revoked image replaced, a new image, a config change */
      cause: DeployCause
      reason: string
    }
  | {
      kind: 'replace'
      service: string
      instance: string
      release: number
      /** why, as data: drift and recycle replace instances that still serve (voluntary disruptions) */
      cause: ReplaceCause
      reason: string
    }
  | { kind: 'scale-up'; service: string; release: number; count: number; reason: string }
  | { kind: 'scale-down'; service: string; instances: string[]; reason: string }
  | { kind: 'destroy'; service: string; instance: string; cause: DestroyCause; reason: string }

export type DeployCause = 'first' | 'revoked' | 'image' | 'config'
export type ReplaceCause = 'missing' | 'crashed' | 'unhealthy' | 'drift' | 'recycle'
export type DestroyCause = 'superseded' | 'orphan' | 'removed'

/** A replacement (or scale-up) the plan holds back: the service is crash-looping and backing off. */
export interface Waiting {
  service: string
  /** the crashed or unhealthy instance; null for missing replicas */
  instance: string | null
  reason: string
  /** ISO time of the next attempt */
  nextAttemptAt: string
  /** the last lines of the instance's log, when it is still there to read */
  log: string[]
}

export interface Plan {
  environment: string
  actions: Action[]
  /** what apply will not do yet; pending all the same (`plan --detailed-exitcode` exits 2) */
  waiting: Waiting[]
  /** images to build first; `apply` refuses while there are any, `up` builds them */
  builds: PendingBuild[]
  /** services left as they are because what they run is revoked with no allowed replacement: an error */
  blocked: Blocked[]
  /**
   * instances with unexplained drift that the service's `drift.policy` (`report`, `ignore`) leaves
   * running: not pending, listed so that a reconciler can report them
   */
  driftKept?: DriftKept[]
}

/** An instance whose unexplained drift its service's drift policy keeps, not replaces. */
export interface DriftKept {
  service: string
  instance: string
  policy: Exclude<DriftPolicy, 'fix'>
  /** the drift summary, as a replacement's reason would give it */
  drift: string
}
