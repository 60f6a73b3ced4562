import { GrailError } from '../errors.js'
import { accessSync, constants as fsConstants } from 'node:fs'
import { delimiter, join } from 'node:path'

/**
 * Which data plane serves published services: `haproxy` (Debian's HAProxy, driven over its runtime API:
 * one process per project, see haproxy/) wherever HAProxy is installed, else `builtin` (Grail's own
 * proxy, one daemon per service). `GRAIL_DATAPLANE=haproxy|builtin` chooses explicitly.
 */
export type DataPlaneKind = 'haproxy' | 'builtin'

export function dataPlaneKind(): DataPlaneKind {
  const named = process.env.GRAIL_DATAPLANE
  if (named === 'haproxy' || named === 'builtin') return named
  if (named !== undefined && named !== '') {
    throw new GrailError(
      'PROXY_START',
      `GRAIL_DATAPLANE must be haproxy or builtin, got ${JSON.stringify(named)}`,
      {
        hint: 'unset it to use HAProxy when it is installed',
      },
    )
  }
  return findHaproxy() === undefined ? 'builtin' : 'haproxy'
}

/** The HAProxy executable: `GRAIL_HAPROXY`, else `haproxy` on the PATH or in /usr/sbin; undefined when none. */
export function findHaproxy(): string | undefined {
  const named = process.env.GRAIL_HAPROXY
  if (named !== undefined && named !== '') return named
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin']
  for (const d of dirs) {
    if (d === '') continue
    const p = join(d, 'haproxy')
    try {
      accessSync(p, fsConstants.X_OK)
      return p
    } catch {
      // not here
    }
  }
  return undefined
}
