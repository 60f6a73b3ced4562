import { join } from 'node:path'
import { readdir } from 'node:fs/promises'
import {
  checkSnapshot,
  checkSnapshotDir,
  type LayerRef,
  RETIRED_PREFIX,
  shiftedSnapshotPath,
  snapshotPath,
} from '../container/snapshots.js'
import { GrailError, isErrno } from '../errors.js'
import type { GrailHome } from '../home.js'
import type { Digest } from '../oci/digest.js'
import type { OciStore } from '../oci/store.js'
import type { ImageConfig, Manifest } from '../oci/types.js'
import type { SnapshotDamage } from '../container/snapshot-verify.js'
import type { RuntimeFinding } from './types.js'

/** A damaged snapshot: which dir, which layer of the image, and what differs in it. */
export interface DamagedSnapshot {
  dir: string
  layer: Digest
  damage: SnapshotDamage[]
  /** the copy shifted into a user namespace, not the shared snapshot */
  shifted?: boolean
}

/** What an instance runs on: its image, and the id base of its user namespace if it has one. */
export interface SnapshotUse {
  image: Digest
  idBase?: number
}

/** The key of a use in damagedSnapshots' result. */
export function useKey(u: SnapshotUse): string {
  return u.idBase === undefined ? u.image : `${u.image}@${u.idBase}`
}

/** A check that found nothing to check against (no sound blob) counts as no result. */
async function orSkip(p: Promise<SnapshotDamage[] | undefined>): Promise<SnapshotDamage[] | undefined> {
  try {
    return await p
  } catch (err) {
    if (err instanceof GrailError && (err.code === 'BLOB_MISSING' || err.code === 'BLOB_CORRUPT'))
      return undefined
    throw err
  }
}

async function layersOf(store: OciStore, image: Digest): Promise<LayerRef[] | undefined> {
  try {
    const manifest = await store.readJson<Manifest>(image)
    const config = await store.readJson<ImageConfig>(manifest.config.digest)
    return manifest.layers.map((l, i) => ({ digest: l.digest, diffId: config.rootfs.diff_ids[i] as Digest }))
  } catch (err) {
    // an image whose blobs are gone cannot be checked here; deploying it reports that
    if (err instanceof GrailError && (err.code === 'BLOB_MISSING' || err.code === 'BLOB_CORRUPT'))
      return undefined
    throw err
  }
}

/**
 * Verifies the unpacked snapshots (shared, read-only overlay lower dirs) of each image, every snapshot
 * once per call even when many instances and images share it, and returns the damaged ones by use
 * (useKey). A use in a user namespace also has its image's copies shifted to its id base verified:
 * those are its lower dirs. Results made at or after `since` are reused (a create right after the scan
 * does not hash again).
 */
export async function damagedSnapshots(
  home: GrailHome,
  store: OciStore,
  uses: readonly SnapshotUse[],
  since: number,
): Promise<Map<string, DamagedSnapshot[]>> {
  const out = new Map<string, DamagedSnapshot[]>()
  const unique = new Map(uses.map((u) => [useKey(u), u]))
  for (const [key, use] of unique) {
    const found: DamagedSnapshot[] = []
    for (const layer of (await layersOf(store, use.image)) ?? []) {
      // no sound blob to list the layer from: nothing to check the snapshot against
      const damage = await orSkip(checkSnapshot(home, store, layer, { since }))
      if (damage && damage.length > 0)
        found.push({ dir: snapshotPath(home, layer), layer: layer.digest, damage })
      if (use.idBase === undefined) continue
      const dir = shiftedSnapshotPath(home, use.idBase, layer)
      const shifted = await orSkip(checkSnapshotDir(home, store, layer, dir, { since, idShift: use.idBase }))
      if (shifted && shifted.length > 0)
        found.push({ dir, layer: layer.digest, damage: shifted, shifted: true })
    }
    if (found.length > 0) out.set(key, found)
  }
  return out
}

/**
 * One unexplained runtime finding per damaged snapshot an instance's image uses: the files of a shared
 * snapshot changed, so every instance on it runs something that is not its image. No hotfix or ignore
 * glob covers it (a hotfix writes to the instance's own upper dir); the remedy is a replacement, which
 * unpacks the layer again from its verified blob.
 */
export function snapshotFindings(home: GrailHome, damaged: readonly DamagedSnapshot[]): RuntimeFinding[] {
  return damaged.map((d) => {
    const shown = d.damage
      .slice(0, 3)
      .map((x) => `${join(d.dir, x.path).slice(home.root.length + 1)} (${x.what.join(', ')})`)
    const more = d.damage.length > 3 ? `, and ${d.damage.length - 3} more` : ''
    return {
      kind: 'snapshot',
      detail: `${d.shifted ? "image snapshot's copy for the user namespace" : 'shared image snapshot'} changed: ${shown.join(', ')}${more}`,
      class: 'unexplained',
    }
  })
}

/**
 * Retired (damaged, replaced) snapshot dirs by layer diff id (hex): when each was retired (ms). In the
 * shared snapshots dir, or with `idBase` among the copies shifted to that base.
 */
export async function retiredSnapshots(home: GrailHome, idBase?: number): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>()
  let names: string[] = []
  try {
    names = await readdir(idBase === undefined ? home.snapshots : join(home.root, 'shifted', String(idBase)))
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
  for (const name of names) {
    const m = name.startsWith(RETIRED_PREFIX)
      ? /^([0-9a-f]{64})-(\d+)$/.exec(name.slice(RETIRED_PREFIX.length))
      : null
    if (!m) continue
    const hex = m[1] as string
    out.set(hex, [...(out.get(hex) ?? []), Number(m[2])])
  }
  return out
}

/**
 * An instance that mounted its overlay (by `mountedBy`, ISO) before one of its image's snapshots was found
 * damaged and unpacked anew still has
 * the damaged dir as its lower dir (a mounted lower dir is never rewritten): that is drift too, until
 * the instance is replaced.
 */
export async function retiredFindings(
  store: OciStore,
  image: Digest,
  mountedBy: string,
  retired: Map<string, number[]>,
  idBase?: number,
): Promise<RuntimeFinding[]> {
  const where = idBase === undefined ? 'snapshots' : `shifted/${idBase}`
  if (retired.size === 0) return []
  const created = Date.parse(mountedBy)
  const out: RuntimeFinding[] = []
  for (const layer of (await layersOf(store, image)) ?? []) {
    const hex = layer.diffId.slice('sha256:'.length)
    const at = (retired.get(hex) ?? []).filter((t) => t > created).sort((x, y) => x - y)[0]
    if (at === undefined) continue
    out.push({
      kind: 'snapshot',
      detail: `runs on ${where}/${hex} as it was when found damaged (${new Date(at).toISOString()}); new instances get it unpacked anew`,
      class: 'unexplained',
    })
  }
  return out
}
