import { lstat, readdir, rm, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { syncIndex } from '../build/image-writer.js'
import { isErrno } from '../errors.js'
import type { GrailHome } from '../home.js'
import { type Digest, digestHex } from '../oci/digest.js'
import type { OciStore } from '../oci/store.js'
import type { ImageConfig, Manifest } from '../oci/types.js'
import type { RuntimeProvider } from '../runtime/types.js'
import type { PolicySpec } from '../spec/types.js'
import type { Db } from '../state/index.js'
import { allReleases, appendEvent, listImages, markCollected, pinnedDigests } from '../state/index.js'
import { mapLimit } from '../util/pool.js'
import { type GcImage, type GcPlan, planGc } from './gc-plan.js'
import { lockedDigests } from './lock.js'

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
  blobs: { deleted: number; bytes: number; young: number }
  snapshots: { deleted: number; bytes: number }
  /** why each kept image is kept */
  kept: Array<{ image: string; why: string }>
}

async function sizeOf(path: string): Promise<number> {
  const st = await lstat(path)
  if (!st.isDirectory()) return st.size
  let total = 0
  for (const name of await readdir(path)) total += await sizeOf(join(path, name))
  return total
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
 * `grail gc`: deletes the image versions no root reaches (see gc-plan.ts), then every blob of the store
 * and every unpacked snapshot that no kept image references, except those younger than the grace period.
 * Each blob is checked again just before it is removed, so a build that reused it meanwhile keeps it.
 * Collected versions stay in the catalog as tombstones, so a version number is never reused.
 */
export async function collectGarbage(
  env: GcEnv,
  opts: { dryRun: boolean; graceMs?: number; now?: number },
): Promise<GcReport> {
  const now = opts.now ?? Date.now()
  const grace = opts.graceMs ?? GC_GRACE_MS
  const { images, diffIds } = await catalog(env)
  const running = (await env.provider.list({ project: env.project.name })).map((o) => o.imageDigest as string)
  const plan: GcPlan = planGc({
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
  })
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
    blobs: { deleted: 0, bytes: 0, young: 0 },
    snapshots: { deleted: 0, bytes: 0 },
    kept: [...plan.kept].map(([image, why]) => ({ image, why })),
  }
  if (!opts.dryRun && plan.collected.length > 0) markCollected(env.db, plan.collected)

  const blobDir = join(env.store.root, 'blobs', 'sha256')
  const candidates = (await readdir(blobDir)).filter((hex) => !plan.liveBlobs.has(`sha256:${hex}`))
  const stats = await mapLimit(candidates, 64, (hex) =>
    stat(join(blobDir, hex)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined
      throw err
    }),
  )
  const doomed: string[] = []
  for (const [i, hex] of candidates.entries()) {
    const st = stats[i]
    if (st === undefined) continue
    if (now - st.mtimeMs < grace) {
      report.blobs.young++
      continue
    }
    report.blobs.deleted++
    report.blobs.bytes += st.size
    doomed.push(join(blobDir, hex))
  }
  if (!opts.dryRun) {
    await mapLimit(doomed, 64, async (path) => {
      // checked again right before it goes: a build that just reused it has touched it
      const again = await stat(path).catch(() => undefined)
      if (again && Date.now() - again.mtimeMs >= grace) await unlink(path).catch(() => undefined)
    })
  }

  let snapshots: string[] = []
  try {
    snapshots = await readdir(env.home.snapshots)
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
  for (const name of snapshots) {
    if (!/^[0-9a-f]{64}$/.test(name) || liveSnapshots.has(name)) continue
    const path = join(env.home.snapshots, name)
    const st = await stat(path)
    if (now - st.mtimeMs < grace) continue
    report.snapshots.deleted++
    report.snapshots.bytes += await sizeOf(path)
    if (!opts.dryRun) await rm(path, { recursive: true, force: true })
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
    await syncIndex(env.db, env.store)
    appendEvent(env.db, 'gc.run', env.project.name, {
      collected: report.images.collected.map((i) => `${i.name}@${i.version}`),
      blobs: report.blobs,
      snapshots: report.snapshots,
    })
  }
  return report
}
