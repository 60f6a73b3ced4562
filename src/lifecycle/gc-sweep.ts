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
  // only the order depends on it: a blob that cannot be opened goes last, and its unlink reports why
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

/** A file or dir gc meant to delete and could not: the path and the system's reason. */
export interface GcFailure {
  path: string
  /** the errno code (EPERM, EROFS, EBUSY, ...) */
  code: string
  message: string
}

/**
 * What became of each doomed blob: `deleted` (its bytes are freed), `gone` (deleted by someone else
 * meanwhile), `young` (touched within the grace period since it was picked: a build reused it),
 * `failed` (the unlink failed, see `failure`), `left` (not tried: an earlier phase failed).
 */
export type BlobOutcome =
  | { path: string; result: 'deleted' | 'gone' | 'young' | 'left' }
  | { path: string; result: 'failed'; failure: GcFailure }

export function gcFailure(path: string, err: unknown): GcFailure {
  if (!(err instanceof Error)) throw err
  const code = (err as NodeJS.ErrnoException).code
  // anything but a system error (a bug) is not a file gc could not delete
  if (typeof code !== 'string') throw err
  return { path, code, message: err.message }
}

/**
 * Deletes blobs phase by phase (manifests, then configs, then layers), each phase finished before the
 * next begins, so that at every moment each manifest still on disk has its config and layers: with
 * index.json rewritten first, a kill at any point leaves a layout skopeo and umoci read. A blob is
 * checked again right before it goes: a build that reused it meanwhile has touched it. A blob that
 * cannot be deleted (EPERM, EROFS) is reported, and the later phases are left for the next gc, since
 * the manifest or config kept may still name their blobs.
 */
export async function deleteBlobsInOrder(
  doomed: ReadonlyArray<{ path: string; kind: BlobKind }>,
  graceMs: number,
): Promise<BlobOutcome[]> {
  const phases: Array<[BlobKind, GcCrashPoint]> = [
    ['manifest', 'gc-manifest-deleted'],
    ['config', 'gc-config-deleted'],
    ['layer', 'gc-layer-deleted'],
  ]
  const outcomes: BlobOutcome[] = []
  for (const [kind, point] of phases) {
    const these = doomed.filter((d) => d.kind === kind)
    if (outcomes.some((o) => o.result === 'failed')) {
      for (const { path } of these) outcomes.push({ path, result: 'left' })
      continue
    }
    let first = true
    const done = await mapLimit(these, 64, async ({ path }): Promise<BlobOutcome> => {
      try {
        const again = await stat(path)
        if (Date.now() - again.mtimeMs < graceMs) return { path, result: 'young' }
        await unlink(path)
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return { path, result: 'gone' }
        return { path, result: 'failed', failure: gcFailure(path, err) }
      }
      if (first) {
        first = false
        crashPoint(point)
      }
      return { path, result: 'deleted' }
    })
    outcomes.push(...done)
  }
  return outcomes
}

/** Prefix of a snapshot dir being deleted: never used as a snapshot, finished by the next gc. */
export const DOOMED_PREFIX = '.gc-'

/**
 * Removes snapshot dirs one at a time, each first renamed out of its name (atomic), so a kill during the
 * removal never leaves a half-emptied dir under the name an instance would mount; the next gc finishes.
 * Returns the ones that could not be removed (renamed or not, the next gc tries again); the rest are
 * gone.
 */
export async function deleteSnapshots(
  root: string,
  names: readonly string[],
): Promise<Map<string, GcFailure>> {
  const failed = new Map<string, GcFailure>()
  let first = true
  for (const name of names) {
    const doomed = name.startsWith(DOOMED_PREFIX) ? name : `${DOOMED_PREFIX}${name}-${process.pid}`
    try {
      if (doomed !== name) await rename(join(root, name), join(root, doomed))
      await rm(join(root, doomed), { recursive: true, force: true })
    } catch (err) {
      if (isErrno(err, 'ENOENT')) continue
      failed.set(name, gcFailure(join(root, name), err))
      continue
    }
    if (first) {
      first = false
      crashPoint('gc-snapshot-deleted')
    }
  }
  return failed
}
