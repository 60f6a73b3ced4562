import { constants } from 'node:fs'
import { lstat, open, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { GrailError, isErrno } from '../../errors.js'
import type { GrailHome } from '../../home.js'
import { mountsUnder } from '../../util/mounts.js'
import { instancePaths, instanceRelPath } from './layout.js'

/** Symlinks followed in one lookup before it is refused, as the kernel's ELOOP limit. */
const MAX_LINKS = 40

/**
 * `rel` (relative to the instance's root) resolved as the instance itself would resolve it, one component
 * at a time: a symlink's target is read and resolved against the instance's root (an absolute one) or its
 * directory, and '..' stops at the root, so no link inside the instance can lead to a host path.
 * Undefined when a component does not exist.
 */
async function resolveInRoot(root: string, rel: string): Promise<string | undefined> {
  let todo = rel.split('/')
  const done: string[] = []
  let links = 0
  while (todo.length > 0) {
    const part = todo.shift() as string
    if (part === '' || part === '.') continue
    if (part === '..') {
      done.pop()
      continue
    }
    const here = join(root, ...done, part)
    let st: Awaited<ReturnType<typeof lstat>>
    try {
      st = await lstat(here)
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined
      throw err
    }
    if (!st.isSymbolicLink()) {
      done.push(part)
      continue
    }
    if (++links > MAX_LINKS) return undefined
    const target = await readlink(here)
    if (target.startsWith('/')) done.length = 0
    todo = [...target.split('/'), ...todo]
  }
  return join(root, ...done)
}

/**
 * The content of regular file `path` of a local instance as it is now, read through its mounted overlay
 * rootfs (upper dir over the image's snapshots, as the instance sees it), as a stream. The final open
 * does not follow a symlink (O_NOFOLLOW), so a link swapped in by the instance after the lookup is
 * refused rather than followed out of the instance.
 */
export async function readInstanceFile(home: GrailHome, id: string, path: string): Promise<Readable> {
  const p = instancePaths(home, id)
  const rel = instanceRelPath(path, 'file')
  if (!(await mountsUnder(p.rootfs)).includes(p.rootfs)) {
    throw new GrailError(
      'INSTANCE_NOT_READY',
      `instance ${id} has no mounted filesystem to read ${path} from`,
      {
        hint: 'its create did not finish, or it was destroyed; replace it (`grail apply`)',
      },
    )
  }
  const notFound = () =>
    new GrailError('INSTANCE_PATH_NOT_FOUND', `${path} does not exist in instance ${id}`, {
      hint: 'list what changed in it with `grail drift`',
    })
  const resolved = await resolveInRoot(p.rootfs, rel)
  if (resolved === undefined) throw notFound()
  let fh: Awaited<ReturnType<typeof open>>
  try {
    fh = await open(resolved, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw notFound()
    if (!isErrno(err, 'ELOOP')) throw err
    throw new GrailError('INSTANCE_PATH_NOT_FILE', `${path} in instance ${id} changed while it was read`, {
      hint: 'read it again',
    })
  }
  // the lookup above resolved every component inside the root, but the instance may swap a directory
  // for a symlink to a host path between that lookup and the open (only the last component is opened
  // with O_NOFOLLOW): where the opened file really is tells, and anything outside the root is refused
  const opened = await readlink(`/proc/self/fd/${fh.fd}`)
  if (!opened.startsWith(`${p.rootfs}/`)) {
    await fh.close()
    throw new GrailError(
      'INSTANCE_PATH_NOT_FILE',
      `${path} in instance ${id} led outside the instance while it was read`,
      {
        hint: 'the instance changed its own filesystem during the read: treat it as compromised and replace it (`grail apply`)',
      },
    )
  }
  const st = await fh.stat()
  if (!st.isFile()) {
    await fh.close()
    throw new GrailError(
      'INSTANCE_PATH_NOT_FILE',
      `${path} in instance ${id} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}`,
      { hint: 'only the content of a regular file can be read' },
    )
  }
  return fh.createReadStream()
}
