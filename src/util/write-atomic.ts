import { randomBytes } from 'node:crypto'
import { link, open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { isErrno } from '../errors.js'

/** What `writeAtomic` writes: bytes, text (UTF-8), or a stream of chunks (a blob being produced). */
export type AtomicContent = string | Uint8Array | AsyncIterable<Uint8Array | string>

export interface WriteAtomicOptions {
  /**
   * The file's mode, set exactly (whatever the umask). Without it the file gets 0o666 less the umask, as
   * `writeFile` gives a new file.
   */
  mode?: number
  /**
   * First writer wins: fail with EEXIST (and write nothing) when `path` exists, as the `wx` flag does,
   * but a reader never sees the file empty or half-written (the complete temp file is hard-linked).
   */
  exclusive?: boolean
  /**
   * false: no fsync of the file or its directory. Only for caches whose loss or staleness after a crash
   * costs work and never correctness (a reader still sees the old file or the new one, whole, or none).
   */
  durable?: boolean
}

/** A temp name next to `path`: same directory (so the rename is atomic), unique per process and call. */
function tempNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
}

/**
 * Flushes a directory's entries (a rename in it) to disk. Some filesystems refuse to fsync a directory
 * (EINVAL); the rename is then as durable as that filesystem makes it, which is all that can be had.
 */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } catch (err) {
    if (!isErrno(err, 'EINVAL') && !isErrno(err, 'ENOTSUP')) throw err
  } finally {
    await fh.close()
  }
}

/**
 * Replaces `path` with `content` so that a reader, or the next process after a crash or power loss, sees
 * the old file or the new one and never part of either: the content goes into a temp file in the same
 * directory, which is fsynced and renamed over `path`, and then the directory is fsynced. On any failure
 * (a write, the disk full, a throwing stream) the temp file is removed and `path` is left as it was.
 * Concurrent writers each have their own temp file: the last rename wins, whole.
 */
export async function writeAtomic(
  path: string,
  content: AtomicContent,
  opts: WriteAtomicOptions = {},
): Promise<void> {
  const tmp = tempNameFor(path)
  try {
    const fh = await open(tmp, 'wx', opts.mode ?? 0o666)
    try {
      if (opts.mode !== undefined) await fh.chmod(opts.mode)
      if (typeof content === 'string' || content instanceof Uint8Array) await fh.writeFile(content)
      // each writeFile continues at the handle's position, and writes all of its chunk
      else for await (const chunk of content) await fh.writeFile(chunk)
      if (opts.durable !== false) await fh.sync()
    } finally {
      await fh.close()
    }
    if (opts.exclusive) await link(tmp, path)
    else await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  if (opts.exclusive) await rm(tmp, { force: true })
  if (opts.durable !== false) await syncDir(dirname(path))
}

/**
 * Moves a finished temp file (written elsewhere on the same filesystem, e.g. a blob streamed into the
 * store's tmp dir) to `dest` durably: the file is fsynced, renamed, and `dest`'s directory fsynced. The
 * temp file is removed if the move fails.
 */
export async function renameDurably(tmp: string, dest: string): Promise<void> {
  try {
    const fh = await open(tmp, 'r')
    try {
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, dest)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await syncDir(dirname(dest))
}
