import { probeBackend } from './probe.js'
import type { Route, RouteTable } from './routes.js'
import type { BackendCheck } from './types.js'

/**
 * How often an ejected backend is probed: at most this far apart, so a backend ejected for one refused
 * connect or one slow answer is back within about a second once it answers again.
 */
const EJECTED_RECHECK_MS = 500
/** The probe of a backend that has no check of its own (ejected by a failed request): a TCP connect. */
const CONNECT_TIMEOUT_MS = 1_000

/**
 * Runs the health checks of one route until the returned function is called: its own check every
 * `interval` (the first one interval after the route joined the set: Grail only lists instances that just
 * passed their gate), and, while it is ejected, a probe every `EJECTED_RECHECK_MS` at most (its check, or a
 * TCP connect to its port when it has none). Each probe's outcome goes to `table.observe`.
 */
export function watchRoute(table: RouteTable, r: Route): () => void {
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const schedule = (): void => {
    const own = r.backend.check
    const every = own?.interval ?? EJECTED_RECHECK_MS
    const ms = r.ejected === undefined ? every : Math.min(every, EJECTED_RECHECK_MS)
    timer = setTimeout(tick, ms)
    timer.unref()
  }
  const tick = (): void => {
    const check = checkOf(r)
    if (check === undefined) {
      schedule()
      return
    }
    void probeBackend(r.backend.host, check)
      .then((res) => {
        if (!stopped) table.observe(r, res.ok, res.detail)
      })
      // a probe that throws must not end the daemon (an unhandled rejection would), nor stop the checks
      .catch(() => {})
      .finally(() => {
        if (!stopped) schedule()
      })
  }
  schedule()
  return () => {
    stopped = true
    clearTimeout(timer)
  }
}

/** The probe to run now: the backend's own check, or a connect when it has none and is ejected. */
function checkOf(r: Route): BackendCheck | undefined {
  const { check, port } = r.backend
  if (check !== undefined) return check
  if (r.ejected === undefined) return undefined
  return { type: 'tcp', port, interval: EJECTED_RECHECK_MS, timeout: CONNECT_TIMEOUT_MS }
}
