import type { Socket } from 'node:net'
import { BackendAgent } from './agent.js'
import { watchRoute } from './health-watch.js'
import type { Backend, Ejection, ProxyLog, ProxyStats, SwapResult } from './types.js'

/** One backend as the proxy tracks it: in-flight count, connection pool (http) or open links (tcp). */
export interface Route {
  /** Replaced by a swap that keeps the route but changes its check. */
  backend: Backend
  /** Connections or requests in flight now. */
  active: number
  total: number
  /** Out of the set: no new traffic; disposed once `active` reaches 0 or the drain timeout passes. */
  removed: boolean
  /** Closed at the drain timeout: errors caused by that close are never retried. */
  forced: boolean
  /** Keep-alive pool to this backend (http mode). */
  readonly agent: BackendAgent | undefined
  /** Client sockets piped to this backend (tcp mode), closed at the drain timeout. */
  readonly links: Set<Socket> | undefined
  onIdle: (() => void) | undefined
  /** Set while the backend is out of rotation: `pick` skips it until its probes pass again. */
  ejected: Ejection | undefined
  /** Passing probes in a row since the ejection. */
  passes: number
  /** Requests (http) waiting for this backend's response header: each is told when it is ejected. */
  readonly waiting: Set<() => void> | undefined
  /** Stops the route's health checks. */
  unwatch: (() => void) | undefined
}

/** What a route table needs to know. */
export interface RouteTableOptions {
  readonly mode: 'tcp' | 'http'
  readonly drainTimeoutMs: number
  /** How long a spare connection may wait for a request (see BackendAgent). */
  readonly spareIdleMs?: number
  readonly log: ProxyLog | undefined
  /** Run active and readmission checks (default true; the unit tests of routing alone turn it off). */
  readonly healthChecks?: boolean
}

/** Passing probes in a row an ejected backend needs before it takes traffic again. */
export const READMIT_PASSES = 2

const routeKey = (b: Backend): string => `${b.id}\0${b.host}\0${b.port}`

/**
 * The current backend set and the routes still draining. The set is one array replaced in a single
 * assignment, so a swap is atomic: every `pick` after `set` sees only the new set. Round robin is one
 * counter over that array; the hot path (`pick`, `acquire`, `release`) allocates nothing.
 */
export class RouteTable {
  #list: Route[] = []
  readonly #draining = new Set<Route>()
  /** Totals of disposed routes, so `stats().total` survives a swap. */
  readonly #retired = new Map<string, number>()
  readonly #waiters = new Set<() => void>()
  #rr = 0
  #closed = false
  readonly #opts: RouteTableOptions

  constructor(opts: RouteTableOptions) {
    this.#opts = opts
  }

  /** True once `close` was called: waiting traffic gives up. */
  get closed(): boolean {
    return this.#closed
  }

  /** Number of backends in the current set. */
  get size(): number {
    return this.#list.length
  }

  /** Number of backends of the current set in rotation (not ejected). */
  get available(): number {
    let n = 0
    for (const r of this.#list) if (r.ejected === undefined) n++
    return n
  }

  /** The next backend in rotation by round robin, skipping `tried`; undefined when none is left. */
  pick(tried?: readonly Route[]): Route | undefined {
    const list = this.#list
    const n = list.length
    if (n === 0) return undefined
    if (this.#rr > 0x3fffffff) this.#rr = 0
    for (let i = 0; i < n; i++) {
      const r = list[this.#rr++ % n]
      if (r !== undefined && r.ejected === undefined && (tried === undefined || !tried.includes(r))) return r
    }
    return undefined
  }

  /**
   * Takes `r` out of rotation at once (a failed probe, a refused connect, a response that did not come in
   * time); requests waiting on it for a response header are told, so they can go elsewhere.
   */
  eject(r: Route, reason: string): void {
    if (r.ejected !== undefined || r.removed || this.#closed) return
    r.ejected = { id: r.backend.id, reason, since: new Date().toISOString() }
    r.passes = 0
    this.#opts.log?.('eject', { backend: r.backend.id, reason, inRotation: this.available })
    if (this.available === 0)
      this.#opts.log?.('all-ejected', { backends: this.#list.map((x) => x.backend.id) })
    for (const tell of [...(r.waiting ?? [])]) tell()
  }

  /** Records one probe of `r`: a failure ejects it, `READMIT_PASSES` passes in a row readmit it. */
  observe(r: Route, ok: boolean, detail: string): void {
    if (r.removed) return
    if (!ok) {
      if (r.ejected === undefined) this.eject(r, detail)
      else r.passes = 0
      return
    }
    if (r.ejected === undefined || ++r.passes < READMIT_PASSES) return
    const was = r.ejected
    r.ejected = undefined
    r.passes = 0
    this.#opts.log?.('readmit', { backend: r.backend.id, ejectedFor: was.reason, since: was.since })
    for (const wake of [...this.#waiters]) wake()
  }

  /** The backends of the current set that are out of rotation. */
  ejected(): Ejection[] {
    return this.#list.flatMap((r) => (r.ejected === undefined ? [] : [r.ejected]))
  }

  /** Counts one connection or request as in flight on `r`. */
  acquire(r: Route): void {
    r.active++
    r.total++
  }

  /** Ends one connection or request on `r`; the last one out of a removed route completes its drain. */
  release(r: Route): void {
    if (--r.active === 0 && r.onIdle !== undefined) r.onIdle()
  }

  /** Resolves at the next `set` or `close`, or after `ms`, whichever comes first. */
  waitForChange(ms: number): Promise<void> {
    if (this.#closed) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.#waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.#waiters.add(done)
    })
  }

  /** Replaces the set at once (see `TrafficProxy.setBackends`); resolves when the removed routes are drained. */
  set(backends: readonly Backend[]): Promise<SwapResult> {
    if (this.#closed) return Promise.reject(new Error('proxy is closed'))
    return this.#swap(backends)
  }

  /** Stops routing: empties the set, drains it, and wakes every waiter so it can give up. */
  close(): Promise<SwapResult> {
    this.#closed = true
    return this.#swap([])
  }

  backends(): Backend[] {
    return this.#list.map((r) => r.backend)
  }

  stats(failed: number): ProxyStats {
    const active: Record<string, number> = {}
    const total: Record<string, number> = Object.fromEntries(this.#retired)
    for (const r of [...this.#list, ...this.#draining]) {
      const id = r.backend.id
      active[id] = (active[id] ?? 0) + r.active
      total[id] = (total[id] ?? 0) + r.total
    }
    return { active, total, failed }
  }

  #swap(backends: readonly Backend[]): Promise<SwapResult> {
    const ids = new Set(backends.map((b) => b.id))
    if (ids.size !== backends.length) return Promise.reject(new Error('backend ids must be unique'))
    const old = new Map(this.#list.map((r) => [routeKey(r.backend), r]))
    const next = backends.map((b) => {
      const key = routeKey(b)
      const kept = old.get(key)
      old.delete(key)
      const backend: Backend = {
        id: b.id,
        host: b.host,
        port: b.port,
        ...(b.check ? { check: b.check } : {}),
      }
      if (kept === undefined) return this.#create(backend)
      kept.backend = backend
      return kept
    })
    this.#list = next
    for (const wake of [...this.#waiters]) wake()
    const removed = [...old.values()]
    this.#opts.log?.('backends', {
      backends: next.map((r) => r.backend.id),
      removed: removed.map((r) => r.backend.id),
    })
    return Promise.all(removed.map((r) => this.#drain(r))).then(() => ({
      drained: removed.map((r) => r.backend.id),
      forced: removed.filter((r) => r.forced).map((r) => r.backend.id),
    }))
  }

  #create(backend: Backend): Route {
    const http = this.#opts.mode === 'http'
    const r: Route = {
      backend,
      active: 0,
      total: 0,
      removed: false,
      forced: false,
      // lifo keeps few sockets warm; the 4 s idle timeout stays under Node's default 5 s keepAliveTimeout
      // so the backend never closes a socket the pool is about to reuse (Node also honours Keep-Alive hints).
      agent: http
        ? new BackendAgent({
            keepAlive: true,
            scheduling: 'lifo',
            timeout: 4_000,
            spareIdleMs: this.#opts.spareIdleMs,
          })
        : undefined,
      links: http ? undefined : new Set(),
      onIdle: undefined,
      ejected: undefined,
      passes: 0,
      waiting: http ? new Set() : undefined,
      unwatch: undefined,
    }
    if (this.#opts.healthChecks !== false) r.unwatch = watchRoute(this, r)
    return r
  }

  #drain(r: Route): Promise<void> {
    r.removed = true
    r.unwatch?.()
    r.unwatch = undefined
    this.#draining.add(r)
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const finish = (forced: boolean): void => {
        clearTimeout(timer)
        r.onIdle = undefined
        this.#dispose(r, forced)
        resolve()
      }
      if (r.active === 0) return finish(false)
      timer = setTimeout(() => finish(true), this.#opts.drainTimeoutMs)
      r.onIdle = () => finish(false)
    })
  }

  #dispose(r: Route, forced: boolean): void {
    const { id } = r.backend
    if (forced) {
      r.forced = true
      this.#opts.log?.('drain-timeout', { backend: id, active: r.active })
      for (const s of r.links ?? []) s.destroy()
    } else {
      this.#opts.log?.('drained', { backend: id })
    }
    // Destroying the pool also closes its idle keep-alive sockets (and, when forced, the busy ones).
    r.agent?.destroy()
    this.#draining.delete(r)
    this.#retired.set(id, (this.#retired.get(id) ?? 0) + r.total)
  }
}
