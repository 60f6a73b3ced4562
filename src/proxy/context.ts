import type { Route, RouteTable } from './routes.js'
import type { ProxyLog } from './types.js'

/** What the tcp and http forwarders share with the proxy that runs them. */
export interface Context {
  readonly table: RouteTable
  /** How long traffic waits for a backend when none can take it. */
  readonly waitMs: number
  /** How long a request waits for a backend's response header before the backend is ejected. */
  readonly responseTimeoutMs: number
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

/** One client's search for a backend: those already tried, and until when it may wait (0: not yet). */
export interface Attempt {
  deadline: number
  tried: Route[] | undefined
}

/** What one kind of traffic does once routing decided; one static object per mode, so routing allocates nothing. */
export interface RouteHooks<A extends Attempt> {
  dispatch(ctx: Context, attempt: A, r: Route): void
  /** idle: no backend was in rotation (none at all, or all ejected), rather than only refusing ones */
  giveUp(ctx: Context, attempt: A, idle: boolean): void
  /** the client left while waiting */
  gone(attempt: A): boolean
}

/**
 * Picks a backend in rotation for an attempt and dispatches it. With none to take it, waits for the set
 * to change or an ejected backend to be readmitted (none in rotation) or pauses and tries the set again
 * (all it tried refused), up to `waitMs`, then gives up.
 */
export function routeOrWait<A extends Attempt>(ctx: Context, attempt: A, hooks: RouteHooks<A>): void {
  const r = ctx.table.pick(attempt.tried)
  if (r !== undefined) {
    hooks.dispatch(ctx, attempt, r)
    return
  }
  if (attempt.deadline === 0) attempt.deadline = Date.now() + ctx.waitMs
  const left = attempt.deadline - Date.now()
  const idle = ctx.table.available === 0
  if (left <= 0 || ctx.table.closed) {
    hooks.giveUp(ctx, attempt, idle)
    return
  }
  void ctx.table.waitForChange(idle ? left : Math.min(left, RETRY_PAUSE_MS)).then(() => {
    if (hooks.gone(attempt)) return
    attempt.tried = undefined
    routeOrWait(ctx, attempt, hooks)
  })
}
