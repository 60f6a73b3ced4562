/**
 * What `grail outdated` shows and `policies.patch` acts on: for each image version that matters (the
 * newest of each image, and every version an environment runs), the recorded Debian packages that the
 * archive its debian base installs from now has a newer version of, and whether its base image moved on.
 */
import {
  type ArchiveSuite,
  type SuiteIndex,
  debianArchitecture,
  debianSources,
  readArchive,
} from '../build/debian-archive.js'
import { compareDebianVersions } from '../build/debian-version.js'
import { GrailError } from '../errors.js'
import type { GrailHome } from '../home.js'
import type { BaseSource, Project } from '../spec/types.js'
import type { Db, ImageRecord } from '../state/index.js'
import { allReleases, listImages } from '../state/index.js'

type DebianBase = Extract<BaseSource, { kind: 'debian' }>

/** The default of `policies.patch.interval`: how old a cached archive index may be. */
export const DEFAULT_PATCH_INTERVAL = 6 * 3_600_000

/** A package of an image version the archive has a newer version of. */
export interface PackageUpdate {
  package: string
  architecture: string
  /** the version the image has (as grail.lock records it) */
  locked: string
  /** the newest version in the suites its debian base installs from */
  available: string
  /** the suite `available` is from (`bookworm-security`) */
  suite: string
  /** the security archive has a version newer than `locked` */
  security: boolean
}

/** An image version built on a version of its base image that is no longer the newest. */
export interface BaseOutdated {
  image: string
  version: number
  newer: number
  cause: string
}

/** One image version that matters, with what is newer than what it has. */
export interface OutdatedImage {
  image: string
  version: number
  digest: string
  /** the newest active version of its image */
  newest: boolean
  /** the active releases that run it */
  runningIn: Array<{ environment: string; service: string }>
  /** `debian bookworm (amd64)`: what its packages were compared with; null without a debian base */
  archive: string | null
  updates: PackageUpdate[]
  baseOutdated: BaseOutdated | null
}

/** One suite index read, with the date of its Release and when Grail last checked it. */
export interface ArchiveRead {
  uri: string
  suite: string
  component: string
  architecture: string
  security: boolean
  date: string
  checkedAt: string
}

/** What `grail outdated --json` prints (and `/api/v1/outdated` serves). */
export interface OutdatedReport {
  checkedAt: string
  archives: ArchiveRead[]
  images: OutdatedImage[]
}

/** The record of a version's nearest ancestor (itself included) that was bootstrapped from Debian. */
function debianRoot(rec: ImageRecord, byDigest: Map<string, ImageRecord>): DebianBase | null {
  const seen = new Set<string>()
  let cur: ImageRecord | undefined = rec
  while (cur && !seen.has(cur.digest)) {
    seen.add(cur.digest)
    const base = cur.base as BaseSource | null
    if (base?.kind === 'debian') return base
    if (cur.parentDigest === null) return null
    cur = byDigest.get(cur.parentDigest)
  }
  return null
}

/**
 * The base image a version was built on, when a newer active version of it exists. A capture's parent is
 * an earlier version of the same image (plus one layer), not a base: the check looks through it.
 */
export function baseOutdated(
  rec: ImageRecord,
  byDigest: Map<string, ImageRecord>,
  newest: Map<string, ImageRecord>,
): BaseOutdated | null {
  const seen = new Set<string>()
  let cur = rec
  for (;;) {
    if (cur.parentDigest === null || seen.has(cur.digest)) return null
    seen.add(cur.digest)
    const parent = byDigest.get(cur.parentDigest)
    if (!parent) return null
    if (parent.name === cur.name) {
      cur = parent
      continue
    }
    const n = newest.get(parent.name)
    if (!n || n.version <= parent.version) return null
    return {
      image: parent.name,
      version: parent.version,
      newer: n.version,
      cause: `base image ${parent.name} rebuilt: built on v${parent.version}, v${n.version} is newer`,
    }
  }
}

/** Compares an image's packages with the indexes of the suites it installs from. */
export function packageUpdates(rec: ImageRecord, indexes: readonly SuiteIndex[]): PackageUpdate[] {
  const out: PackageUpdate[] = []
  for (const p of rec.packages) {
    let best: { version: string; suite: string; security: boolean } | undefined
    let security = false
    for (const idx of indexes) {
      const v = idx.packages.get(p.name)
      if (v === undefined || compareDebianVersions(v, p.version) <= 0) continue
      if (idx.security) security = true
      const c = best === undefined ? 1 : compareDebianVersions(v, best.version)
      // on a tie the security suite names where the fix is from
      if (c > 0 || (c === 0 && idx.security)) best = { version: v, suite: idx.suite, security: idx.security }
    }
    if (best)
      out.push({
        package: p.name,
        architecture: p.architecture,
        locked: p.version,
        available: best.version,
        suite: best.suite,
        security,
      })
  }
  return out
}

function suitesKey(suites: readonly ArchiveSuite[], arch: string): string {
  return JSON.stringify([arch, suites.map((s) => [s.uri, s.suite, s.components])])
}

/**
 * The image versions that matter (the newest active version of each image of the spec, or only of
 * `image`, and every version an active release runs) with their package updates and outdated bases.
 * Each archive is read once (see readArchive: cached under .grail/archive for `maxAgeMs`).
 */
export async function outdatedReport(opts: {
  project: Project
  home: GrailHome
  db: Db
  now: number
  /** default policies.patch.interval */
  maxAgeMs?: number
  image?: string
  keyring?: string
}): Promise<OutdatedReport> {
  const { project, db } = opts
  const all = listImages(db)
  if (opts.image !== undefined && !project.images[opts.image] && !all.some((i) => i.name === opts.image)) {
    const known = Object.keys(project.images)
    throw new GrailError('UNKNOWN_IMAGE', `${project.file}: no image named "${opts.image}"`, {
      hint: known.length ? `images in this project: ${known.join(', ')}` : 'add an entry under `images:`',
    })
  }
  const byDigest = new Map(all.map((i) => [i.digest, i]))
  // listImages is newest first within a name
  const newest = new Map<string, ImageRecord>()
  for (const i of all) if (i.status === 'active' && !newest.has(i.name)) newest.set(i.name, i)
  const running = new Map<string, Array<{ environment: string; service: string }>>()
  for (const r of allReleases(db)) {
    if (r.status !== 'active') continue
    running.set(r.imageDigest, [
      ...(running.get(r.imageDigest) ?? []),
      { environment: r.environment, service: r.service },
    ])
  }
  const wanted = (name: string) => opts.image === undefined || name === opts.image
  const matter = all.filter(
    (i) =>
      wanted(i.name) &&
      ((project.images[i.name] !== undefined && newest.get(i.name)?.digest === i.digest) ||
        running.has(i.digest)),
  )

  const reads = new Map<string, Promise<SuiteIndex[]>>()
  const indexesFor = (base: DebianBase): Promise<SuiteIndex[]> => {
    const suites = debianSources(base)
    const arch = debianArchitecture(base)
    const key = suitesKey(suites, arch)
    let read = reads.get(key)
    if (!read) {
      read = readArchive(suites, arch, {
        home: opts.home,
        maxAgeMs: opts.maxAgeMs ?? project.policies.patch?.interval ?? DEFAULT_PATCH_INTERVAL,
        now: opts.now,
        ...(opts.keyring ? { keyring: opts.keyring } : {}),
      })
      reads.set(key, read)
    }
    return read
  }

  const images: OutdatedImage[] = []
  for (const rec of matter) {
    const root = debianRoot(rec, byDigest)
    const indexes = root && rec.packages.length > 0 ? await indexesFor(root) : []
    images.push({
      image: rec.name,
      version: rec.version,
      digest: rec.digest,
      newest: newest.get(rec.name)?.digest === rec.digest,
      runningIn: running.get(rec.digest) ?? [],
      archive: root ? `debian ${root.suite} (${debianArchitecture(root)})` : null,
      updates: packageUpdates(rec, indexes),
      baseOutdated: baseOutdated(rec, byDigest, newest),
    })
  }
  const archives: ArchiveRead[] = []
  for (const read of reads.values())
    for (const i of await read)
      archives.push({
        uri: i.uri,
        suite: i.suite,
        component: i.component,
        architecture: i.architecture,
        security: i.security,
        date: i.date,
        checkedAt: i.checkedAt,
      })
  return { checkedAt: new Date(opts.now).toISOString(), archives, images }
}
