import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import tar from 'tar-stream'
import type { Pack } from 'tar-stream'
import type { Digest } from '../digest.js'
import { toHeader } from './headers.js'
import { hashingTap, packBuffer, packSource } from './pack-io.js'
import { normaliseEntryPath, sortByPath } from './paths.js'
import type { PackEntry } from './types.js'

export interface WriteLayerOptions {
  /** SOURCE_DATE_EPOCH in seconds: later mtimes are clamped to it. */
  epoch: number
  /** gzip the tar (default true); when false the file is the plain tar and digest equals diffId. */
  compress?: boolean
}

export interface WrittenLayer {
  /** sha256 of the uncompressed tar. */
  diffId: Digest
  /** sha256 of the file as written. */
  digest: Digest
  /** Size of the file as written. */
  size: number
  uncompressedSize: number
}

/**
 * Writes entries as a reproducible layer: sorted by path, mtimes clamped to `epoch`, empty owner names,
 * pax headers only where ustar cannot hold a field, and gzip at level 6 with no name and mtime 0 in its
 * header, so equal entries always give equal bytes (the compressed digest also depends on the zlib that
 * Node bundles). Both hashes are computed while writing. A file whose size changed since it was scanned
 * fails the write, and a failed write leaves no `destFile` behind.
 */
export async function writeLayer(
  entries: PackEntry[],
  destFile: string,
  opts: WriteLayerOptions,
): Promise<WrittenLayer> {
  if (!Number.isSafeInteger(opts.epoch) || opts.epoch < 0) {
    throw new Error(`writeLayer: epoch must be a non-negative integer, got ${opts.epoch} (this is a bug)`)
  }
  const sorted = checkEntries(sortByPath(entries, (e) => e.path))
  const tarTap = hashingTap()
  const fileTap = hashingTap()
  const pack = tar.pack()
  const stages =
    opts.compress === false ? [tarTap.stream] : [tarTap.stream, createGzip({ level: 6 }), fileTap.stream]
  const out = createWriteStream(destFile)
  const writing = pipeline([pack as unknown as NodeJS.ReadableStream, ...stages, out])
  const feeding = feed(pack, sorted, opts.epoch)
  feeding.catch((err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))))
  try {
    await Promise.all([feeding, writing])
  } catch (err) {
    await Promise.allSettled([feeding, writing])
    // the pipeline settles on the first error, before the file stream has finished opening and closing:
    // removed earlier, the file would be created again by an open still on its way
    if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()))
    await rm(destFile, { force: true })
    throw err
  }
  const diffId = tarTap.digest()
  const file = opts.compress === false ? tarTap : fileTap
  return { diffId, digest: file.digest(), size: file.size(), uncompressedSize: tarTap.size() }
}

/** Entries must have clean unique paths, and a hardlink must follow the file it points to. */
function checkEntries(sorted: PackEntry[]): PackEntry[] {
  const files = new Set<string>()
  let previous: string | undefined
  for (const e of sorted) {
    const norm = normaliseEntryPath(e.path)
    if ('problem' in norm || norm.path !== e.path || e.path === '') {
      throw new Error(`writeLayer: entry path "${e.path}" is not a clean relative path (this is a bug)`)
    }
    if (e.path === previous) throw new Error(`writeLayer: duplicate entry "${e.path}" (this is a bug)`)
    previous = e.path
    if (e.type === 'file') files.add(e.path)
    if (e.type === 'link' && !files.has(e.linkname ?? '')) {
      throw new Error(
        `writeLayer: hardlink "${e.path}" points to "${e.linkname}", no earlier file (this is a bug)`,
      )
    }
  }
  return sorted
}

async function feed(pack: Pack, entries: PackEntry[], epoch: number): Promise<void> {
  for (const entry of entries) {
    const header = toHeader(entry, epoch)
    if (entry.type !== 'file') {
      await new Promise<void>((resolve, reject) =>
        pack.entry(header, (err) => (err ? reject(err) : resolve())),
      )
    } else if (entry.data !== undefined) {
      if (entry.data.length !== entry.size) {
        throw new Error(
          `writeLayer: "${entry.path}" has size ${entry.size} but ${entry.data.length} bytes of data`,
        )
      }
      await packBuffer(pack, header, entry.data)
    } else {
      await packSource(pack, header, entry)
    }
  }
  pack.finalize()
}
