import type { Db, ImageRecord } from '../state/index.js'
import { allReleases, listImages } from '../state/index.js'

/** An image version as `grail images` lists it: its catalog record and whether its base moved on. */
export interface ListedImage extends ImageRecord {
  /** `built on base v2, v3 is newer`, or null when its base is the newest active version (or it has none) */
  outOfDate: string | null
  /** the active releases that run this version, in any environment */
  runningIn: Array<{ environment: string; service: string; release: number }>
}

/** The versions and bytes of one group of images: `in use`, or a status (active, deprecated, revoked). */
export interface ImageGroup {
  group: string
  versions: number
  bytes: number
}

/** What `grail images` shows: every version, newest first per name, and the sprawl at a glance. */
export interface ImageCatalog {
  /** what `grail images --json` prints */
  images: ListedImage[]
  /** manifest digests an active release runs, in any environment */
  inUse: string[]
  /** versions and bytes by group, in the order the groups first appear in `images` */
  groups: ImageGroup[]
}

/**
 * The image catalog with each version's status: out of date when it was built on a base version that
 * is no longer the newest, in use when an active release of any environment runs it.
 */
export function imageCatalog(db: Db): ImageCatalog {
  const all = listImages(db)
  const active = allReleases(db).filter((r) => r.status === 'active')
  const images = all.map((i) => ({
    ...i,
    outOfDate: outOfDate(i, all),
    runningIn: active
      .filter((r) => r.imageDigest === i.digest)
      .map((r) => ({ environment: r.environment, service: r.service, release: r.number })),
  }))
  const inUse = new Set(active.map((r) => r.imageDigest))
  const groups = new Map<string, ImageGroup>()
  for (const i of images) {
    const group = inUse.has(i.digest) ? 'in use' : i.status
    const acc = groups.get(group) ?? { group, versions: 0, bytes: 0 }
    groups.set(group, { group, versions: acc.versions + 1, bytes: acc.bytes + i.size })
  }
  return { images, inUse: [...inUse], groups: [...groups.values()] }
}

/**
 * Where images run: `ENV (SERVICE)` of each active release whose image is one of `digests`, once each;
 * what `grail revoke` names so the user knows which environments to apply.
 */
export function runningIn(db: Db, digests: ReadonlySet<string>): string[] {
  return [
    ...new Set(
      allReleases(db)
        .filter((r) => r.status === 'active' && digests.has(r.imageDigest))
        .map((r) => `${r.environment} (${r.service})`),
    ),
  ]
}

/**
 * "built on base v2, v3 is newer" when the image was built on a version of its base that is no longer
 * the newest. A capture's parent is an earlier version of the same image (the version the instance ran,
 * plus one layer), not a base: that parent is never "newer" than what was captured from it, so the
 * check looks through it to the base the lineage was built on.
 */
function outOfDate(i: ImageRecord, all: ImageRecord[]): string | null {
  const seen = new Set<string>()
  let cur = i
  for (;;) {
    if (cur.parentDigest === null || seen.has(cur.digest)) return null
    seen.add(cur.digest)
    const parent = all.find((p) => p.digest === cur.parentDigest)
    if (!parent) return null
    if (parent.name === cur.name) {
      cur = parent
      continue
    }
    const newest = all.find((p) => p.name === parent.name && p.status === 'active')
    return newest && newest.version > parent.version
      ? `built on ${parent.name} v${parent.version}, v${newest.version} is newer`
      : null
  }
}
