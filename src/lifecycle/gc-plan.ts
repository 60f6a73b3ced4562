/**
 * Garbage collection, the pure part: from the catalog, the releases, what runs and the retention policy,
 * which image versions are kept (and why) and which go, and so which blobs are still referenced. The
 * executor (gc.ts) only deletes what this decides, so the rules can be checked on random histories.
 */

export interface GcImage {
  name: string
  version: number
  digest: string
  parentDigest: string | null
  createdAt: string
  /** every blob the image needs: manifest, config, layers */
  blobs: string[]
  pinned: boolean
}

export interface GcRelease {
  service: string
  environment: string
  number: number
  imageDigest: string
  status: string
  createdAt: string
  promotedFrom: string | null
}

export interface GcPolicy {
  keepVersions: number
  keepDeployedWithin: number
  keepReleases: number
}

export interface GcInput {
  images: GcImage[]
  releases: GcRelease[]
  /** image digests of instances that exist (running or not) */
  running: string[]
  /** the images the project's grail.lock names (what `apply --locked` deploys) */
  locked?: Array<{ name: string; digest: string }>
  policy: GcPolicy
  now: number
}

export interface GcPlan {
  /** kept image versions (`name@version`) with the first reason found */
  kept: Map<string, string>
  collected: GcImage[]
  /** blobs referenced by a kept image */
  liveBlobs: Set<string>
}

const ref = (i: GcImage): string => `${i.name}@${i.version}`

/**
 * The releases of each service and environment gc keeps: the active one and the newest `keep` others that
 * ever ran. The active one is not counted, so with `keep: 1` the release `grail rollback` goes back to is
 * still there.
 */
export function rollbackTargets(releases: readonly GcRelease[], keep: number): GcRelease[] {
  const groups = new Map<string, GcRelease[]>()
  for (const r of releases) {
    if (r.status === 'failed') continue
    const k = `${r.environment}\0${r.service}`
    groups.set(k, [...(groups.get(k) ?? []), r])
  }
  const out: GcRelease[] = []
  for (const list of groups.values()) {
    out.push(...list.filter((r) => r.status === 'active'))
    const earlier = list.filter((r) => r.status !== 'active').sort((a, b) => b.number - a.number)
    out.push(...earlier.slice(0, keep))
  }
  return out
}

/**
 * Roots: what runs, what grail.lock names, every rollback target, every release deployed within `keepDeployedWithin`, promoted
 * releases, pinned images and the newest `keepVersions` of each image; then the ancestors of all of them.
 */
export function planGc(input: GcInput): GcPlan {
  const kept = new Map<string, string>()
  const byDigest = new Map<string, GcImage[]>()
  for (const i of input.images) byDigest.set(i.digest, [...(byDigest.get(i.digest) ?? []), i])
  const keepDigest = (digest: string, why: string): void => {
    for (const i of byDigest.get(digest) ?? []) if (!kept.has(ref(i))) kept.set(ref(i), why)
  }
  for (const d of input.running) keepDigest(d, 'running')
  for (const l of input.locked ?? []) keepDigest(l.digest, `named by grail.lock (${l.name})`)
  for (const r of rollbackTargets(input.releases, input.policy.keepReleases))
    keepDigest(r.imageDigest, `rollback target ${r.service}#${r.number} (${r.environment})`)
  const since = input.now - input.policy.keepDeployedWithin
  for (const r of input.releases) {
    if (Date.parse(r.createdAt) >= since)
      keepDigest(r.imageDigest, `deployed within the retention (${r.service}#${r.number})`)
    if (r.promotedFrom !== null)
      keepDigest(r.imageDigest, `promoted (${r.service}#${r.number} from ${r.promotedFrom})`)
  }
  for (const i of input.images) if (i.pinned) kept.set(ref(i), kept.get(ref(i)) ?? 'pinned')
  const byName = new Map<string, GcImage[]>()
  for (const i of input.images) byName.set(i.name, [...(byName.get(i.name) ?? []), i])
  for (const list of byName.values()) {
    for (const i of list.sort((a, b) => b.version - a.version).slice(0, input.policy.keepVersions))
      if (!kept.has(ref(i))) kept.set(ref(i), `one of the newest ${input.policy.keepVersions} versions`)
  }
  // ancestors: an image is only usable with the image it was built on
  const queue = input.images.filter((i) => kept.has(ref(i)))
  while (queue.length > 0) {
    const i = queue.pop() as GcImage
    if (i.parentDigest === null) continue
    for (const p of byDigest.get(i.parentDigest) ?? []) {
      if (kept.has(ref(p))) continue
      kept.set(ref(p), `ancestor of ${ref(i)}`)
      queue.push(p)
    }
  }
  const liveBlobs = new Set<string>()
  const collected: GcImage[] = []
  for (const i of input.images) {
    if (kept.has(ref(i))) for (const b of i.blobs) liveBlobs.add(b)
    else collected.push(i)
  }
  return { kept, collected, liveBlobs }
}

/**
 * The digests no gc may delete, anywhere, with the first reason found: what runs, what grail.lock names,
 * every rollback target, every release deployed within the retention or promoted, every pinned image.
 * (planGc keeps their versions; this names the digests themselves, also when no version in the catalog
 * has them, so a sweep of a registry protects them by digest.)
 */
export function rootDigests(input: GcInput): Map<string, string> {
  const out = new Map<string, string>()
  const add = (digest: string, why: string) => {
    if (!out.has(digest)) out.set(digest, why)
  }
  for (const d of input.running) add(d, 'running')
  for (const l of input.locked ?? []) add(l.digest, `named by grail.lock (${l.name})`)
  for (const r of rollbackTargets(input.releases, input.policy.keepReleases))
    add(r.imageDigest, `rollback target ${r.service}#${r.number} (${r.environment})`)
  const since = input.now - input.policy.keepDeployedWithin
  for (const r of input.releases) {
    if (Date.parse(r.createdAt) >= since)
      add(r.imageDigest, `deployed within the retention (${r.service}#${r.number})`)
    if (r.promotedFrom !== null)
      add(r.imageDigest, `promoted (${r.service}#${r.number} from ${r.promotedFrom})`)
  }
  for (const i of input.images) if (i.pinned) add(i.digest, `pinned (${ref(i)})`)
  return out
}

export interface RegistryCandidate {
  name: string
  version: number
  digest: string
}

/**
 * Which image versions `gc --registry` deletes the manifests of: those this gc collects and those an
 * earlier gc collected (tombstones), unless their digest is protected: a root (rootDigests) or the digest
 * of any version gc keeps (an ancestor of a root, one of the newest versions, a rebuild of a collected
 * version to the same bytes). Nothing else is a candidate: a manifest the catalog has no record of is
 * never deleted.
 */
export function planRegistrySweep(
  input: GcInput,
  plan: GcPlan,
  tombstones: readonly RegistryCandidate[],
): { doomed: RegistryCandidate[]; spared: Array<RegistryCandidate & { why: string }> } {
  const protect = rootDigests(input)
  for (const i of input.images) {
    const why = plan.kept.get(ref(i))
    if (why !== undefined && !protect.has(i.digest)) protect.set(i.digest, `${ref(i)} is kept: ${why}`)
  }
  const seen = new Set<string>()
  const doomed: RegistryCandidate[] = []
  const spared: Array<RegistryCandidate & { why: string }> = []
  for (const c of [...plan.collected, ...tombstones]) {
    const k = `${c.name}@${c.version}`
    if (seen.has(k)) continue
    seen.add(k)
    const cand = { name: c.name, version: c.version, digest: c.digest }
    const why = protect.get(c.digest)
    if (why !== undefined) spared.push({ ...cand, why })
    else doomed.push(cand)
  }
  const order = (a: RegistryCandidate, b: RegistryCandidate) =>
    a.name === b.name ? a.version - b.version : a.name < b.name ? -1 : 1
  return { doomed: doomed.sort(order), spared: spared.sort(order) }
}
