/**
 * Drift: how a running instance differs from what Grail deployed. Every finding is classified:
 * `unexplained` (nobody said it would happen: the instance is replaced), `excused` (a live hotfix made
 * exactly this change), or `expected` (a path the service declares as ignored).
 */
export type DriftClass = 'unexplained' | 'excused' | 'expected'

export interface FileFinding {
  /** A added, C changed, D deleted */
  kind: 'A' | 'C' | 'D'
  path: string
  /** for C: what changed (content, mode, owner, type, link) */
  what: string[]
  class: DriftClass
  /** the hotfix that excuses it */
  hotfix?: number
  /** unified diff of a small text file whose content changed */
  diff?: string
}

/** `snapshot`: a shared, read-only image snapshot the instance runs on differs from its layer */
export type RuntimeKind = 'image' | 'env' | 'mounts' | 'missing' | 'crashed' | 'orphan' | 'snapshot'

export interface RuntimeFinding {
  kind: RuntimeKind
  detail: string
  class: DriftClass
}

export interface InstanceDrift {
  instance: string
  service: string
  release: number
  files: FileFinding[]
  runtime: RuntimeFinding[]
  /** paths copied up without any change of content or metadata (touched): not drift */
  touched: number
  /** a hotfix of this instance whose TTL ended: the instance is due for replacement */
  expiredHotfix?: number
  unexplained: number
  excused: number
  expected: number
}

export interface DriftReport {
  environment: string
  at: string
  instances: InstanceDrift[]
  /** services whose spec (or lock) changed but was not applied, with the reason */
  desired: Array<{ service: string; reason: string }>
  /** instances with unexplained drift (or an expired hotfix), which `grail drift --fix` replaces */
  drifted: string[]
}
