import { open, rename, rm, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../errors.js'
import type { GcCrashPoint } from '../util/crash-points.js'
import { crashPoint } from '../util/crash-points.js'
import { mapLimit } from '../util/pool.js'

/** What a blob is, for the order of deletion: manifests first, then configs, then layers. */
export type BlobKind = 'manifest' | 'config' | 'layer'

/** JSON blobs are small; anything larger is a layer and is not read. */
const PEEK_MAX_BYTES = 1024 * 1024

/**
 * The kind of a doomed blob: known from the catalog (every version it ever recorded), else by a look at
 * its content, so that blobs a killed gc or build left without a catalog row are ordered right too.
 */
export async function blobKind(
  path: string,
  size: number,
  known: { manifests: Set<string>; configs: Set<string> },
  digest: string,
): Promise<BlobKind> {
  if (known.manifests.has(digest)) return 'manifest'
  if (known.configs.has(digest)) return 'config'
  if (size > PEEK_MAX_BYTES) return 'layer'
  const fh = await open(path, 'r').catch(() => undefined)
  if (fh === undefined) return 'layer'
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(size), 0, size, 0)
    if (buffer[0] !== 0x7b) return 'layer' // not '{': a tar or gzip
    const parsed = JSON.parse(buffer.subarray(0, bytesRead).toString('utf8')) as Record<string, unknown>
    return Array.isArray(parsed.layers) || Array.isArray(parsed.manifests) ? 'manifest' : 'config'
  } catch {
    return 'layer' // not JSON after all
  } finally {
    await fh.close()
  }
}

/**
 * Deletes blobs phase by phase (manifests, then configs, then layers), each phase finished before the
 * next begins, so that at every moment each manifest still on disk has its config and layers: with
 * index.json rewritten first, a kill at any point leaves a layout skopeo and umoci read. A blob is
 * checked again right before it goes: a build that reused it meanwhile has touched it.
 */
export async function deleteBlobsInOrder(
  doomed: ReadonlyArray<{ path: string; kind: BlobKind }>,
  graceMs: number,
): Promise<void> {
  const phases: Array<[BlobKind, GcCrashPoint]> = [
    ['manifest', 'gc-manifest-deleted'],
    ['config', 'gc-config-deleted'],
    ['layer', 'gc-layer-deleted'],
  ]
  for (const [kind, point] of phases) {
    let first = true
    await mapLimit(
      doomed.filter((d) => d.kind === kind),
      64,
      async ({ path }) => {
        const again = await stat(path).catch(() => undefined)
        if (!again || Date.now() - again.mtimeMs < graceMs) return
        await unlink(path).catch(() => undefined)
        if (first) {
          first = false
          crashPoint(point)
        }
      },
    )
  }
}

/** Prefix of a snapshot dir being deleted: never used as a snapshot, finished by the next gc. */
export const DOOMED_PREFIX = '.gc-'

/**
 * Removes snapshot dirs one at a time, each first renamed out of its name (atomic), so a kill during the
 * removal never leaves a half-emptied dir under the name an instance would mount; the next gc finishes.
 */
export async function deleteSnapshots(root: string, names: readonly string[]): Promise<void> {
  for (const [i, name] of names.entries()) {
    const doomed = name.startsWith(DOOMED_PREFIX) ? name : `${DOOMED_PREFIX}${name}-${process.pid}`
    if (doomed !== name) {
      try {
        await rename(join(root, name), join(root, doomed))
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue
        throw err
      }
    }
    await rm(join(root, doomed), { recursive: true, force: true })
    if (i === 0) crashPoint('gc-snapshot-deleted')
  }
}
