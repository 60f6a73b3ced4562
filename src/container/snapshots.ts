// container/: the runc and overlayfs code the builder's sandbox and the local provider share. This file:
// layers unpacked once into read-only, content-addressed snapshot dirs (the overlay lower dirs of build
// steps and instances), verified before reuse and replaced, never rewritten, when damaged.
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import type { Stats } from 'node:fs'
import { lstat, mkdir, rename, rm, utimes } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { PassThrough } from 'node:stream'
import { GrailError, isErrno } from '../errors.js'
import type { GrailHome } from '../home.js'
import type { Digest } from '../oci/digest.js'
import { digestHex } from '../oci/digest.js'
import { layerFileList } from '../oci/file-manifest.js'
import type { OciStore } from '../oci/store.js'
import { extractLayer } from '../oci/tar/index.js'
import type { SnapshotDamage } from './snapshot-verify.js'
import { verifySnapshotDir } from './snapshot-verify.js'

export interface LayerRef {
  digest: Digest
  diffId: Digest
}

/** Directory name of a layer's snapshot: its diff id, so equal content is unpacked once. */
export function snapshotPath(home: GrailHome, layer: LayerRef): string {
  return join(home.snapshots, digestHex(layer.diffId))
}

/** Prefix of a snapshot dir taken out of use because it was damaged; gc removes it once nothing mounts it. */
export const RETIRED_PREFIX = '.retired-'

/** The latest verification of each snapshot dir in this process, and the ones running now. */
const checked = new Map<string, { at: number; damage: SnapshotDamage[] }>()
const checking = new Map<string, Promise<SnapshotDamage[]>>()

/**
 * Verifies an unpacked snapshot against its layer's recorded entries (see verifySnapshotDir); a result
 * made at or after `since` (ms) is reused, so a scan of many instances of one image hashes it once.
 * Undefined when the layer is not unpacked.
 */
export function checkSnapshot(
  home: GrailHome,
  store: OciStore,
  layer: LayerRef,
  opts: { since: number },
): Promise<SnapshotDamage[] | undefined> {
  return checkSnapshotDir(home, store, layer, snapshotPath(home, layer), opts)
}

/** Where the copy of a layer with every owner shifted by `base` (for a user namespace) lives. */
export function shiftedSnapshotPath(home: GrailHome, base: number, layer: LayerRef): string {
  return join(home.root, 'shifted', String(base), digestHex(layer.diffId))
}

/**
 * checkSnapshot for any unpacked copy of a layer: `dest` is the dir, `idShift` what was added to every
 * owner (a copy shifted into a user namespace).
 */
export async function checkSnapshotDir(
  home: GrailHome,
  store: OciStore,
  layer: LayerRef,
  dest: string,
  opts: { since: number; idShift?: number },
): Promise<SnapshotDamage[] | undefined> {
  if (!existsSync(dest)) return undefined
  const done = checked.get(dest)
  if (done && done.at >= opts.since) return done.damage
  let pending = checking.get(dest)
  if (!pending) {
    const at = Date.now()
    const shift = opts.idShift === undefined ? {} : { idShift: opts.idShift }
    pending = layerFileList(home, store, layer.digest)
      .then((entries) => verifySnapshotDir(dest, entries, shift))
      .then((damage) => {
        checked.set(dest, { at, damage })
        return damage
      })
      .finally(() => checking.delete(dest))
    checking.set(dest, pending)
  }
  return pending
}

/** Records that `dest` was just unpacked from a verified blob: a create right after reuses that. */
export function markVerified(dest: string): void {
  checked.set(dest, { at: Date.now(), damage: [] })
}

/** A verification at most this old is reused by a create (the drift scan before an apply made it). */
export const REUSE_CHECK_MS = 60_000

/**
 * Makes sure a layer is unpacked as a read-only overlay lower dir (whiteouts as overlay whiteouts) that
 * is exactly what the layer holds, and returns its path. An existing dir is verified (or a verification
 * from the last minute reused); a damaged one is unpacked again from the verified blob into a new dir
 * that takes its name, while the old one, which running instances may still have as a lower dir, is
 * moved aside, never rewritten. The blob is hashed while it streams; the unpacked dir appears (by
 * rename) only if the blob matched its digest, so a half-done or corrupt unpack is never used.
 */
export function ensureSnapshot(
  home: GrailHome,
  store: OciStore,
  layer: LayerRef,
  opts: { verify?: boolean } = {},
): Promise<string> {
  const dest = snapshotPath(home, layer)
  // a reader that only looks paths up (an instance's diff) takes the dir as it is and repairs nothing:
  // the drift scan reports the damage, and the replacement's create repairs it
  if (opts.verify === false && existsSync(dest)) return Promise.resolve(dest)
  // instances started side by side share one check and one unpack of each layer
  let pending = unpacking.get(dest)
  if (!pending) {
    pending = ensureOnce(home, store, layer, dest).finally(() => unpacking.delete(dest))
    unpacking.set(dest, pending)
  }
  return pending
}

const unpacking = new Map<string, Promise<string>>()

async function ensureOnce(home: GrailHome, store: OciStore, layer: LayerRef, dest: string): Promise<string> {
  const damage = await checkSnapshot(home, store, layer, { since: Date.now() - REUSE_CHECK_MS })
  if (damage === undefined) return unpackSnapshot(home, store, layer, dest)
  if (damage.length === 0) {
    // marks it in use: gc leaves snapshots touched within its grace period alone
    const now = new Date()
    await utimes(dest, now, now)
    return dest
  }
  const fresh = await unpackToTemp(home, store, layer)
  await rename(dest, join(home.snapshots, `${RETIRED_PREFIX}${basename(dest)}-${Date.now()}`))
  await moveInto(fresh, dest)
  checked.set(dest, { at: Date.now(), damage: [] })
  return dest
}

async function unpackSnapshot(
  home: GrailHome,
  store: OciStore,
  layer: LayerRef,
  dest: string,
): Promise<string> {
  await moveInto(await unpackToTemp(home, store, layer), dest)
  checked.set(dest, { at: Date.now(), damage: [] })
  return dest
}

async function moveInto(tmp: string, dest: string): Promise<void> {
  try {
    await rename(tmp, dest)
  } catch (err) {
    // another process unpacked the same layer first: theirs is as good as ours
    if (!isErrno(err, 'ENOTEMPTY') && !isErrno(err, 'EEXIST')) throw err
    await rm(tmp, { recursive: true, force: true })
  }
}

/** Unpacks a layer into a new temp dir under the snapshots dir, hashing the blob as it streams. */
async function unpackToTemp(home: GrailHome, store: OciStore, layer: LayerRef): Promise<string> {
  await mkdir(home.snapshots, { recursive: true })
  const tmp = join(home.snapshots, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`)
  await mkdir(tmp)
  await extractVerifiedLayer(store, layer, tmp)
  return tmp
}

/**
 * Extracts a layer blob into `dir` (made by the caller) while hashing it; nothing unverified stays: on a
 * failure, or bytes that do not hash to the layer's digest, `dir` is removed and BLOB_MISSING or
 * BLOB_CORRUPT names the blob. `idOffset` shifts every owner (a user namespace's copy).
 */
export async function extractVerifiedLayer(
  store: OciStore,
  layer: LayerRef,
  dir: string,
  opts: { idOffset?: number } = {},
): Promise<void> {
  const hash = createHash('sha256')
  const tee = new PassThrough()
  const src = createReadStream(store.blobPath(layer.digest))
  src.on('data', (c) => hash.update(c as Buffer))
  src.on('error', (e) => tee.destroy(e))
  src.pipe(tee)
  try {
    await extractLayer(tee, dir, {
      mode: 'snapshot',
      label: `layer ${layer.digest}`,
      allowDevices: false,
      ...(opts.idOffset === undefined ? {} : { idOffset: opts.idOffset }),
    })
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    // a corrupt blob usually fails as a broken gzip stream ("invalid distance code"): say what it is
    throw (await layerBlobProblem(store, layer.digest)) ?? err
  }
  if (`sha256:${hash.digest('hex')}` !== layer.digest) {
    await rm(dir, { recursive: true, force: true })
    throw blobError(store, layer.digest, 'corrupt')
  }
}

/** A layer blob that cannot be unpacked: BLOB_MISSING or BLOB_CORRUPT (the caller adds which image). */
export function blobError(store: OciStore, digest: Digest, health: 'missing' | 'corrupt'): GrailError {
  return new GrailError(
    health === 'missing' ? 'BLOB_MISSING' : 'BLOB_CORRUPT',
    health === 'missing'
      ? `layer blob ${store.blobPath(digest)} is missing`
      : `layer blob ${store.blobPath(digest)} is corrupt: it does not hash to ${digest}`,
    { hint: '`grail build` rebuilds missing and corrupt blobs of the images grail.yaml builds' },
  )
}

/** Hashes a layer blob in full: the error to report when it is missing or corrupt, else undefined. */
async function layerBlobProblem(store: OciStore, digest: Digest): Promise<GrailError | undefined> {
  try {
    await store.verifyBlob(digest)
    return undefined
  } catch (err) {
    if (err instanceof GrailError && err.code === 'BLOB_MISSING') return blobError(store, digest, 'missing')
    if (err instanceof GrailError && err.code === 'BLOB_CORRUPT') return blobError(store, digest, 'corrupt')
    throw err
  }
}

/** Snapshot dirs of an image's layers, topmost first: the order overlayfs wants for lowerdir. */
export async function ensureLowers(
  home: GrailHome,
  store: OciStore,
  layers: readonly LayerRef[],
  opts: { verify?: boolean } = {},
): Promise<string[]> {
  const lowers: string[] = []
  for (const layer of layers) lowers.unshift(await ensureSnapshot(home, store, layer, opts))
  return lowers
}

/** An empty lower dir, for overlays over images with no layers (scratch). */
export async function emptySnapshot(home: GrailHome): Promise<string> {
  const dir = join(home.snapshots, 'empty')
  await mkdir(dir, { recursive: true })
  return dir
}

/**
 * Looks a path up in a stack of snapshot dirs (topmost first) the way overlayfs would: the first layer
 * that has it wins, a whiteout hides it. Opaque dirs are not consulted; callers only ask about parents of
 * a destination, where that simplification is harmless.
 */
export async function lookupInLowers(lowers: string[], rel: string): Promise<Stats | undefined> {
  for (const dir of lowers) {
    try {
      const st = await lstat(join(dir, rel))
      if (st.isCharacterDevice() && st.rdev === 0) return undefined
      return st
    } catch (err) {
      if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err
    }
  }
  return undefined
}
