import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import type { Stats } from 'node:fs'
import { lstat, mkdir, rename, rm, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { GrailError, isErrno } from '../errors.js'
import type { GrailHome } from '../home.js'
import type { Digest } from '../oci/digest.js'
import { digestHex } from '../oci/digest.js'
import type { OciStore } from '../oci/store.js'
import { extractLayer } from '../oci/tar/index.js'

export interface LayerRef {
  digest: Digest
  diffId: Digest
}

/** Directory name of a layer's snapshot: its diff id, so equal content is unpacked once. */
export function snapshotPath(home: GrailHome, layer: LayerRef): string {
  return join(home.snapshots, digestHex(layer.diffId))
}

/**
 * Makes sure a layer is unpacked as a read-only overlay lower dir (whiteouts as overlay whiteouts) and
 * returns its path. The blob is hashed while it streams; the unpacked dir appears (by rename) only if the
 * blob matched its digest, so a half-done or corrupt unpack is never used.
 */
export function ensureSnapshot(home: GrailHome, store: OciStore, layer: LayerRef): Promise<string> {
  const dest = snapshotPath(home, layer)
  if (existsSync(dest)) {
    // marks it in use: gc leaves snapshots touched within its grace period alone
    const now = new Date()
    return utimes(dest, now, now).then(
      () => dest,
      () => dest,
    )
  }
  // instances started side by side share one unpack of each layer
  let pending = unpacking.get(dest)
  if (!pending) {
    pending = unpackSnapshot(home, store, layer, dest).finally(() => unpacking.delete(dest))
    unpacking.set(dest, pending)
  }
  return pending
}

const unpacking = new Map<string, Promise<string>>()

async function unpackSnapshot(
  home: GrailHome,
  store: OciStore,
  layer: LayerRef,
  dest: string,
): Promise<string> {
  await mkdir(home.snapshots, { recursive: true })
  const tmp = join(home.snapshots, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`)
  await mkdir(tmp)
  const hash = createHash('sha256')
  const tee = new PassThrough()
  const src = createReadStream(store.blobPath(layer.digest))
  src.on('data', (c) => hash.update(c as Buffer))
  src.on('error', (e) => tee.destroy(e))
  src.pipe(tee)
  try {
    await extractLayer(tee, tmp, { mode: 'snapshot', label: `layer ${layer.digest}`, allowDevices: false })
  } catch (err) {
    await rm(tmp, { recursive: true, force: true })
    // a corrupt blob usually fails as a broken gzip stream ("invalid distance code"): say what it is
    throw (await layerBlobProblem(store, layer.digest)) ?? err
  }
  const actual = `sha256:${hash.digest('hex')}`
  if (actual !== layer.digest) {
    await rm(tmp, { recursive: true, force: true })
    throw blobError(store, layer.digest, 'corrupt')
  }
  try {
    await rename(tmp, dest)
  } catch (err) {
    // another build unpacked the same layer first: theirs is as good as ours
    if (!isErrno(err, 'ENOTEMPTY') && !isErrno(err, 'EEXIST')) throw err
    await rm(tmp, { recursive: true, force: true })
  }
  return dest
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
): Promise<string[]> {
  const lowers: string[] = []
  for (const layer of layers) lowers.unshift(await ensureSnapshot(home, store, layer))
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
