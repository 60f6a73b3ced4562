import type { RouteTable } from './routes.js'
import type { ProxyLog } from './types.js'

/** What the tcp and http forwarders share with the proxy that runs them. */
export interface Context {
  readonly table: RouteTable
  /** How long traffic waits for a backend when none can take it. */
  readonly waitMs: number
  readonly log: ProxyLog | undefined
  /** Counts one client-visible failure. */
  readonly fail: () => void
}

/** Pause before trying a set again in which every backend refused (the set may be mid-rollout). */
export const RETRY_PAUSE_MS = 50

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND'])

/** True for errors raised while connecting, before any byte reached the backend: safe to retry. */
export function isConnectError(code: string | undefined): boolean {
  return code !== undefined && CONNECT_ERRORS.has(code)
}
