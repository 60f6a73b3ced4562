import { lstat, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { syncIndex } from '../build/image-writer.js'
import { isErrno } from '../errors.js'
import type { GrailHome } from '../home.js'
import { type Digest, digestHex } from '../oci/digest.js'
import type { OciStore } from '../oci/store.js'
import type { ImageConfig, Manifest } from '../oci/types.js'
import { RETIRED_PREFIX } from '../container/snapshots.js'
import { crashPoint } from '../util/crash-points.js'
import { oldestLocalInstance } from '../runtime/index.js'
import type { RuntimeProvider } from '../runtime/types.js'
import type { PolicySpec } from '../spec/types.js'
import type { Db } from '../state/index.js'
import {
  allReleases,
  appendEvent,
  listImages,
  markCollected,
  pinnedDigests,
  recordedImageBlobs,
} from '../state/index.js'
import { mapLimit } from '../util/pool.js'
import { type GcImage, type GcInput, type GcPlan, planGc } from './gc-plan.js'
import { lockedDigests } from './lock.js'
import {
  type BlobKind,
  blobKind,
  DOOMED_PREFIX,
  deleteBlobsInOrder,
  deleteSnapshots,
  type GcFailure,
} from './gc-sweep.js'

export type { GcFailure } from './gc-sweep.js'

/** Blobs and snapshots younger than this are never deleted: a build running now may be writing or using them. */
export const GC_GRACE_MS = 10 * 60_000

export interface GcEnv {
  project: { name: string; dir: string; policies: PolicySpec }
  home: GrailHome
  db: Db
  store: OciStore
  provider: RuntimeProvider
}

export interface GcReport {
  dryRun: boolean
  images: { kept: number; collected: Array<{ name: string; version: number; digest: string }> }
  /**
   * `deleted` and `bytes` count what was really removed (a dry run: what would be); `left`: blobs not
   * tried because an earlier phase failed (the next gc does them)
   */
  blobs: { deleted: number; bytes: number; young: number; left: number }
  snapshots: { deleted: number; bytes: number }
  /** why each kept image is kept */
  kept: Array<{ image: string; why: string }>
  /** blobs and snapshot dirs that could not be deleted, with the reason; their bytes are not counted */
  failed: GcFailure[]
}

async function sizeOf(path: string): Promise<number> {
  const st = await lstat(path)
  if (!st.isDirectory()) return st.size
  let total = 0
  for (const name of await readdir(path)) total += await sizeOf(join(path, name))
  return total
}

/** A path's mtime (ms), or now when it is gone already: then nothing is left to collect. */
async function mtimeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).mtimeMs
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return Date.now()
    throw err
  }
}

/** Retired shifted copies no instance can still mount (none is older than the retirement), by dir. */
async function retiredShifted(home: GrailHome, oldest: number | undefined): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>()
  const root = join(home.root, 'shifted')
  let bases: string[] = []
  try {
    bases = await readdir(root)
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
  for (const base of bases.filter((b) => /^\d+$/.test(b))) {
    const dir = join(root, base)
    const names = (await readdir(dir)).filter((name) => {
      // one a killed gc was removing is finished whatever its age
      if (name.startsWith(DOOMED_PREFIX)) return true
      const at = name.startsWith(RETIRED_PREFIX) ? Number(name.split('-').at(-1)) : Number.NaN
      return Number.isFinite(at) && (oldest === undefined || oldest > at)
    })
    if (names.length > 0) out.set(dir, names)
  }
  return out
}

/** The catalog as the planner sees it: every image with the blobs it needs and the diff ids of its layers. */
async function catalog(env: GcEnv): Promise<{ images: GcImage[]; diffIds: Map<string, string[]> }> {
  const pins = pinnedDigests(env.db)
  const images: GcImage[] = []
  const diffIds = new Map<string, string[]>()
  const records = listImages(env.db)
  const described = await mapLimit(records, 16, async (rec) => {
    const blobs: string[] = [rec.digest]
    let layerDiffIds: string[] | undefined
    if (env.store.hasBlob(rec.digest)) {
      const manifest = await env.store.readJson<Manifest>(rec.digest)
      blobs.push(manifest.config.digest, ...manifest.layers.map((l) => l.digest))
      if (env.store.hasBlob(manifest.config.digest)) {
        layerDiffIds = (await env.store.readJson<ImageConfig>(manifest.config.digest)).rootfs.diff_ids
      }
    }
    return { rec, blobs, layerDiffIds }
  })
  for (const { rec, blobs, layerDiffIds } of described) {
    if (layerDiffIds) diffIds.set(rec.digest, layerDiffIds)
    images.push({
      name: rec.name,
      version: rec.version,
      digest: rec.digest,
      parentDigest: rec.parentDigest,
      createdAt: rec.createdAt,
      blobs,
      pinned: pins.has(rec.digest),
    })
  }
  return { images, diffIds }
}

/**
 * What the planner decides on: the catalog, every release, what runs, what grail.lock names, the policy.
 * `grail gc --registry` plans from the same input, so both protect the same roots.
 */
export async function gcInput(
  env: GcEnv,
  now: number,
): Promise<{ images: GcImage[]; diffIds: Map<string, string[]>; input: GcInput }> {
  const { images, diffIds } = await catalog(env)
  const running = (await env.provider.list({ project: env.project.name })).map((o) => o.imageDigest as string)
  const input: GcInput = {
    images,
    releases: allReleases(env.db).map((r) => ({
      service: r.service,
      environment: r.environment,
      number: r.number,
      imageDigest: r.imageDigest,
      status: r.status,
      createdAt: r.createdAt,
      promotedFrom: r.promotedFrom,
    })),
    running,
    locked: await lockedDigests(env.project),
    policy: env.project.policies.gc,
    now,
  }
  return { images, diffIds, input }
}

/**
 * `grail gc`: deletes the image versions no root reaches (see gc-plan.ts), then every blob of the store
 * and every unpacked snapshot that no kept image references, except those younger than the grace period.
 * Each blob is checked again just before it is removed, so a build that reused it meanwhile keeps it.
 * Collected versions stay in the catalog as tombstones, so a version number is never reused. The work is
 * ordered so that a kill at any point leaves a valid OCI layout and the next gc finishes the job.
 */
export async function collectGarbage(
  env: GcEnv,
  opts: { dryRun: boolean; graceMs?: number; now?: number },
): Promise<GcReport> {
  const now = opts.now ?? Date.now()
  const grace = opts.graceMs ?? GC_GRACE_MS
  const { images, diffIds, input } = await gcInput(env, now)
  const plan: GcPlan = planGc(input)
  const liveSnapshots = new Set<string>()
  for (const i of images)
    if (plan.kept.has(`${i.name}@${i.version}`))
      for (const d of diffIds.get(i.digest) ?? []) liveSnapshots.add(digestHex(d as Digest))

  const report: GcReport = {
    dryRun: opts.dryRun,
    images: {
      kept: plan.kept.size,
      collected: plan.collected.map((i) => ({ name: i.name, version: i.version, digest: i.digest })),
    },
    blobs: { deleted: 0, bytes: 0, young: 0, left: 0 },
    snapshots: { deleted: 0, bytes: 0 },
    kept: [...plan.kept].map(([image, why]) => ({ image, why })),
    failed: [],
  }
  if (!opts.dryRun) {
    // the order makes a kill at any point harmless: tombstones first (the next gc sees these versions as
    // gone and finishes), then index.json without them (temp + rename), and only then their blobs
    if (plan.collected.length > 0) markCollected(env.db, plan.collected)
    crashPoint('gc-collected')
    await syncIndex(env.db, env.store)
    crashPoint('gc-index-written')
  }

  const blobDir = join(env.store.root, 'blobs', 'sha256')
  const candidates = (await readdir(blobDir)).filter((hex) => !plan.liveBlobs.has(`sha256:${hex}`))
  const stats = await mapLimit(candidates, 64, (hex) =>
    stat(join(blobDir, hex)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined
      throw err
    }),
  )
  const known = recordedImageBlobs(env.db)
  const doomed: Array<{ path: string; kind: BlobKind }> = []
  const sizes = new Map<string, number>()
  for (const [i, hex] of candidates.entries()) {
    const st = stats[i]
    if (st === undefined) continue
    if (now - st.mtimeMs < grace) {
      report.blobs.young++
      continue
    }
    const path = join(blobDir, hex)
    if (opts.dryRun) {
      report.blobs.deleted++
      report.blobs.bytes += st.size
      continue
    }
    sizes.set(path, st.size)
    doomed.push({ path, kind: await blobKind(path, st.size, known, `sha256:${hex}`) })
  }
  // only what was really unlinked counts as freed
  for (const o of opts.dryRun ? [] : await deleteBlobsInOrder(doomed, grace)) {
    if (o.result === 'deleted') {
      report.blobs.deleted++
      report.blobs.bytes += sizes.get(o.path) ?? 0
    } else if (o.result === 'young') report.blobs.young++
    else if (o.result === 'left') report.blobs.left++
    else if (o.result === 'failed') report.failed.push(o.failure)
  }

  let snapshots: string[] = []
  try {
    snapshots = await readdir(env.home.snapshots)
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
  const doomedSnapshots: string[] = []
  const snapshotSizes = new Map<string, { bytes: number; counted: boolean }>()
  const oldest = await oldestLocalInstance(env.home)
  for (const name of snapshots) {
    // a dir a killed gc was removing is finished whatever its age; a damaged snapshot taken out of use
    // goes once no instance is older than its retirement (every newer one mounted its replacement)
    const retiredAt = name.startsWith(RETIRED_PREFIX) ? Number(name.split('-').at(-1)) : undefined
    const leftover =
      name.startsWith(DOOMED_PREFIX) ||
      // the temp dir of an unpack that was killed: its age tells it is not running any more
      (name.startsWith('.tmp-') && now - (await mtimeOf(join(env.home.snapshots, name))) >= grace) ||
      (retiredAt !== undefined && Number.isFinite(retiredAt) && (oldest === undefined || oldest > retiredAt))
    if (!leftover && (!/^[0-9a-f]{64}$/.test(name) || liveSnapshots.has(name))) continue
    const path = join(env.home.snapshots, name)
    const st = await stat(path)
    if (!leftover && now - st.mtimeMs < grace) continue
    const bytes = await sizeOf(path)
    if (!leftover) report.snapshots.deleted++
    report.snapshots.bytes += bytes
    snapshotSizes.set(path, { bytes, counted: !leftover })
    doomedSnapshots.push(name)
  }
  // a dir that could not be removed is taken back out of the counts
  const uncount = (failed: Map<string, GcFailure>) => {
    for (const f of failed.values()) {
      const s = snapshotSizes.get(f.path)
      report.snapshots.bytes -= s?.bytes ?? 0
      if (s?.counted) report.snapshots.deleted--
      report.failed.push(f)
    }
  }
  if (!opts.dryRun) uncount(await deleteSnapshots(env.home.snapshots, doomedSnapshots))
  // the same for damaged copies of snapshots shifted into a user namespace (shifted/<base>/)
  for (const [dir, names] of await retiredShifted(env.home, oldest)) {
    for (const name of names) {
      const bytes = await sizeOf(join(dir, name))
      report.snapshots.bytes += bytes
      snapshotSizes.set(join(dir, name), { bytes, counted: false })
    }
    if (!opts.dryRun) uncount(await deleteSnapshots(dir, names))
  }

  if (!opts.dryRun) {
    // caches that point at deleted blobs are dropped, so a build never trusts them
    const gone = (d: string) => !env.store.hasBlob(d as Digest)
    const layers = env.db.prepare('SELECT key, digest FROM layer_cache').all() as Array<{
      key: string
      digest: string
    }>
    const bases = env.db.prepare('SELECT key, layers FROM base_cache').all() as Array<{
      key: string
      layers: string
    }>
    env.db
      .transaction(() => {
        for (const l of layers)
          if (gone(l.digest)) env.db.prepare('DELETE FROM layer_cache WHERE key = ?').run(l.key)
        for (const b of bases) {
          const list = JSON.parse(b.layers) as Array<{ digest: string }>
          if (list.some((l) => gone(l.digest)))
            env.db.prepare('DELETE FROM base_cache WHERE key = ?').run(b.key)
        }
      })
      .immediate()
    appendEvent(env.db, 'gc.run', env.project.name, {
      collected: report.images.collected.map((i) => `${i.name}@${i.version}`),
      blobs: report.blobs,
      snapshots: report.snapshots,
      failed: report.failed,
    })
  }
  return report
}
