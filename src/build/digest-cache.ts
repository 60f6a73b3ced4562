import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../errors.js'
import type { GrailHome } from '../home.js'
import { type Digest, sha256File } from '../oci/digest.js'
import { writeAtomic } from '../util/write-atomic.js'

interface Entry {
  sig: string
  digest: Digest
}

/** What identifies a file's content without reading it: any write changes its ctime (and mtime). */
function signature(st: { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number }) {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`
}

/** A file written this recently may change again within the same timestamp: its hash is not remembered. */
const RACY_MS = 2000

async function readCache(file: string): Promise<Record<string, Entry>> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, Entry>
  } catch (err) {
    if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return {}
    throw err
  }
}

/**
 * The sha256 of a file (a rootfs tarball base), remembered by its stat in the project's state dir, so a
 * plan, which works out build keys every time, does not read an unchanged tarball again (a 2 MB busybox
 * rootfs took 66 ms to hash on a loaded 2-core VM). Without a home, or for a file just written, it hashes.
 */
export async function fileDigest(home: GrailHome | undefined, path: string): Promise<Digest> {
  if (home === undefined) return (await sha256File(path)).digest
  const file = join(home.root, 'file-digests.json')
  const before = await stat(path)
  const sig = signature(before)
  const cache = await readCache(file)
  const hit = cache[path]
  if (hit?.sig === sig) return hit.digest
  const { digest } = await sha256File(path)
  const after = await stat(path)
  if (signature(after) === sig && Date.now() - Math.max(after.mtimeMs, after.ctimeMs) > RACY_MS) {
    cache[path] = { sig, digest }
    try {
      await writeAtomic(file, JSON.stringify(cache))
    } catch (err) {
      // a home that cannot be written (read-only checkout) only costs the next plan a hash
      if (!isErrno(err, 'ENOENT') && !isErrno(err, 'EACCES') && !isErrno(err, 'EROFS')) throw err
    }
  }
  return digest
}
