import { join } from 'node:path'
import { readdir } from 'node:fs/promises'
import { checkSnapshot, type LayerRef, RETIRED_PREFIX, snapshotPath } from '../build/snapshots.js'
import { GrailError, isErrno } from '../errors.js'
import type { GrailHome } from '../home.js'
import type { Digest } from '../oci/digest.js'
import type { OciStore } from '../oci/store.js'
import type { ImageConfig, Manifest } from '../oci/types.js'
import type { SnapshotDamage } from '../build/snapshot-verify.js'
import type { RuntimeFinding } from './types.js'

/** A damaged snapshot: which dir, which layer of the image, and what differs in it. */
export interface DamagedSnapshot {
  dir: string
  layer: Digest
  damage: SnapshotDamage[]
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
 * once per call even when many instances and images share it, and returns the damaged ones by image.
 * Results made at or after `since` are reused (a create right after the scan does not hash again).
 */
export async function damagedSnapshots(
  home: GrailHome,
  store: OciStore,
  images: readonly Digest[],
  since: number,
): Promise<Map<Digest, DamagedSnapshot[]>> {
  const out = new Map<Digest, DamagedSnapshot[]>()
  for (const image of new Set(images)) {
    const found: DamagedSnapshot[] = []
    for (const layer of (await layersOf(store, image)) ?? []) {
      let damage: SnapshotDamage[] | undefined
      try {
        damage = await checkSnapshot(home, store, layer, { since })
      } catch (err) {
        // no sound blob to list the layer from: nothing to check the snapshot against
        if (err instanceof GrailError && (err.code === 'BLOB_MISSING' || err.code === 'BLOB_CORRUPT'))
          continue
        throw err
      }
      if (damage && damage.length > 0)
        found.push({ dir: snapshotPath(home, layer), layer: layer.digest, damage })
    }
    if (found.length > 0) out.set(image, found)
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
      detail: `shared image snapshot changed: ${shown.join(', ')}${more}`,
      class: 'unexplained',
    }
  })
}

/** Retired (damaged, replaced) snapshot dirs by layer diff id (hex): when each was retired (ms). */
export async function retiredSnapshots(home: GrailHome): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>()
  let names: string[] = []
  try {
    names = await readdir(home.snapshots)
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
): Promise<RuntimeFinding[]> {
  if (retired.size === 0) return []
  const created = Date.parse(mountedBy)
  const out: RuntimeFinding[] = []
  for (const layer of (await layersOf(store, image)) ?? []) {
    const hex = layer.diffId.slice('sha256:'.length)
    const at = (retired.get(hex) ?? []).filter((t) => t > created).sort((x, y) => x - y)[0]
    if (at === undefined) continue
    out.push({
      kind: 'snapshot',
      detail: `runs on snapshots/${hex} as it was when found damaged (${new Date(at).toISOString()}); new instances get it unpacked anew`,
      class: 'unexplained',
    })
  }
  return out
}
