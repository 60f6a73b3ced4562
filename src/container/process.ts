// container/: the runc and overlayfs code the builder's sandbox and the local provider share. This file:
// who and what a container's process runs as, resolved against the image (never the host): its user and
// group from the image's own /etc/passwd and /etc/group, and the PATH it gets when the image sets none.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { GrailError, isErrno } from '../errors.js'

/** The PATH a process gets when its image sets none (Docker's default). */
export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

async function readIdDb(rootfs: string, file: 'passwd' | 'group'): Promise<string[][]> {
  try {
    return (await readFile(join(rootfs, 'etc', file), 'utf8')).split('\n').map((l) => l.split(':'))
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  }
}

/** The row of /etc/passwd or /etc/group for a name, or a user error naming the file and the fix. */
async function lookupName(rootfs: string, file: 'passwd' | 'group', name: string): Promise<string[]> {
  const row = (await readIdDb(rootfs, file)).find((r) => r[0] === name)
  if (!row) {
    const what = file === 'passwd' ? 'user' : 'group'
    throw new GrailError(
      file === 'passwd' ? 'UNKNOWN_USER' : 'UNKNOWN_GROUP',
      `${what} "${name}" does not exist in the image's /etc/${file}`,
      {
        hint: `create the ${what} in an earlier run step, or use a numeric id`,
      },
    )
  }
  return row
}

/**
 * Resolves `user` (name or uid, optional :group) against the image's own passwd and group files. As in
 * Docker, a numeric uid with no group takes its primary group from /etc/passwd when listed there, else 0.
 */
export async function resolveUser(
  rootfs: string,
  user: string | undefined,
): Promise<{ uid: number; gid: number }> {
  if (!user) return { uid: 0, gid: 0 }
  const [u = '', g] = user.split(':')
  const passwd = /^\d+$/.test(u)
    ? (await readIdDb(rootfs, 'passwd')).find((r) => r[2] === u)
    : await lookupName(rootfs, 'passwd', u)
  const uid = /^\d+$/.test(u) ? Number(u) : Number(passwd?.[2])
  let gid = passwd ? Number(passwd[3]) : 0
  if (g !== undefined) gid = /^\d+$/.test(g) ? Number(g) : Number((await lookupName(rootfs, 'group', g))[2])
  return { uid, gid }
}
