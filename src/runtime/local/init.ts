import { access, constants } from 'node:fs/promises'
import { GrailError, isErrno } from '../../errors.js'

/**
 * Debian's static tini (package `tini`): a static binary runs in any rootfs, busybox-static ones without
 * a libc included, where the dynamic /usr/bin/tini would not start.
 */
export const TINI_STATIC = '/usr/bin/tini-static'

/** The host path of the init instances run as PID 1, or a user error saying how to install it. */
export async function instanceInit(path = process.env.GRAIL_INIT ?? TINI_STATIC): Promise<string> {
  try {
    await access(path, constants.X_OK)
    return path
  } catch (err) {
    if (!isErrno(err, 'ENOENT') && !isErrno(err, 'EACCES')) throw err
    throw new GrailError('TOOL_MISSING', `the instance init ${path} is missing`, {
      hint: "install Debian's tini package (./scripts/setup does), or set GRAIL_INIT to a static init",
    })
  }
}
