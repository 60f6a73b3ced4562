import type { Digest } from '../oci/digest.js'
import { GrailError } from '../errors.js'
import { liveInstances } from '../state/index.js'
import type { DriftEnv } from './scan.js'
import { damagedSnapshots, type SnapshotUse, useKey } from './snapshots.js'
import type { SnapshotDamage } from '../container/snapshot-verify.js'

export interface VerifyReport {
  environment: string
  at: string
  /** images checked: those the environment's instances run */
  images: number
  snapshots: Array<{ dir: string; layer: string; damage: SnapshotDamage[]; instances: string[] }>
  blobs: Array<{ digest: string; problem: 'missing' | 'corrupt'; instances: string[] }>
}

/**
 * `grail verify`: hashes, now, everything the environment's instances run on: every blob of their images
 * against its digest, and every shared snapshot (and copy of one shifted into a user namespace) against
 * its layer's recorded entries (the drift scan
 * does the latter too, on every plan). Reports what is damaged and which instances it affects.
 */
export async function verifyEnvironment(a: DriftEnv): Promise<VerifyReport> {
  const observed = await a.provider.list({ project: a.project.name, environment: a.environment })
  const known = new Set(liveInstances(a.db, a.environment).map((r) => r.id))
  const users = new Map<Digest, string[]>()
  // who runs on what: the shared snapshots, and in a user namespace the copies shifted to its base
  const uses = new Map<string, { use: SnapshotUse; ids: string[] }>()
  for (const o of observed) {
    if (o.state === 'missing' || !known.has(o.id)) continue
    const d = o.imageDigest as Digest
    users.set(d, [...(users.get(d) ?? []), o.id])
    const use: SnapshotUse = { image: d, ...(o.idBase !== undefined ? { idBase: o.idBase } : {}) }
    const u = uses.get(useKey(use)) ?? { use, ids: [] }
    u.ids.push(o.id)
    uses.set(useKey(use), u)
  }
  const report: VerifyReport = {
    environment: a.environment,
    at: new Date().toISOString(),
    images: users.size,
    snapshots: [],
    blobs: [],
  }
  const damaged = await damagedSnapshots(
    a.home,
    a.store,
    [...uses.values()].map((u) => u.use),
    Date.now(),
  )
  const seen = new Map<string, VerifyReport['snapshots'][number]>()
  for (const [key, list] of damaged) {
    for (const d of list) {
      const entry = seen.get(d.dir) ?? { dir: d.dir, layer: d.layer, damage: d.damage, instances: [] }
      for (const id of uses.get(key)?.ids ?? []) if (!entry.instances.includes(id)) entry.instances.push(id)
      seen.set(d.dir, entry)
    }
  }
  report.snapshots = [...seen.values()]
  const blobs = new Map<string, VerifyReport['blobs'][number]>()
  for (const [image, ids] of users) {
    for (const digest of await blobsOf(a, image)) {
      const problem = await blobProblem(a, digest)
      if (problem === undefined) continue
      const entry = blobs.get(digest) ?? { digest, problem, instances: [] }
      entry.instances.push(...ids)
      blobs.set(digest, entry)
    }
  }
  report.blobs = [...blobs.values()]
  return report
}

async function blobsOf(a: DriftEnv, image: Digest): Promise<Digest[]> {
  try {
    const manifest = await a.store.readJson<{
      config: { digest: Digest }
      layers: Array<{ digest: Digest }>
    }>(image)
    return [image, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]
  } catch (err) {
    if (err instanceof GrailError && (err.code === 'BLOB_MISSING' || err.code === 'BLOB_CORRUPT'))
      return [image]
    throw err
  }
}

async function blobProblem(a: DriftEnv, digest: Digest): Promise<'missing' | 'corrupt' | undefined> {
  try {
    await a.store.verifyBlob(digest)
    return undefined
  } catch (err) {
    if (err instanceof GrailError && err.code === 'BLOB_MISSING') return 'missing'
    if (err instanceof GrailError && err.code === 'BLOB_CORRUPT') return 'corrupt'
    throw err
  }
}
