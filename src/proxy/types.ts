/**
 * How the proxy checks one backend on its own: an HTTP GET of `path` that must answer `expectStatus`, or
 * a TCP connect, on `port` of the backend's host, every `interval` ms, each probe failing after `timeout`.
 */
export type BackendCheck = { readonly port: number; readonly interval: number; readonly timeout: number } & (
  | { readonly type: 'http'; readonly path: string; readonly expectStatus: number }
  | { readonly type: 'tcp' }
)

/** One instance the proxy may send traffic to. The caller only lists instances it counts as healthy. */
export interface Backend {
  readonly id: string
  readonly host: string
  readonly port: number
  /** The active health check; without one the proxy only checks passively (see `ProxyOptions`). */
  readonly check?: BackendCheck
}

/** A backend the proxy has taken out of rotation, and why. */
export interface Ejection {
  readonly id: string
  /** what the failing probe or request saw: "HTTP 500", "timed out", "ECONNREFUSED" */
  readonly reason: string
  /** ISO time of the ejection */
  readonly since: string
}

/**
 * Receives proxy events (`listen`, `backends`, `failover`, `drained`, `drain-timeout`, `no-backend`,
 * `eject`, `readmit`).
 */
export type ProxyLog = (event: string, data: object) => void

/** How a proxy listens and forwards. */
export interface ProxyOptions {
  /** Address to listen on; `127.0.0.1` keeps the service on loopback. */
  readonly listenHost: string
  /** Port to listen on; 0 picks a free port (see `TrafficProxy.address`). */
  readonly listenPort: number
  /** `tcp` pipes each connection to one backend; `http` routes each request. */
  readonly mode: 'tcp' | 'http'
  /** How long traffic in flight to a removed backend may take before it is closed. Default 30 000. */
  readonly drainTimeoutMs?: number
  /** How long a connection or request waits when no backend can take it. Default 5 000. */
  readonly waitForBackendMs?: number
  /** How long a connection opened ahead of the next request may wait unused before it is closed. Default 4 000. */
  readonly spareIdleMs?: number
  /**
   * How long a request may wait for the response header of a backend before the backend is ejected and
   * the request retried elsewhere (idempotent, body not sent) or answered 504. Default 30 000.
   */
  readonly responseTimeoutMs?: number
  /** Run active checks and readmission probes (default true). */
  readonly healthChecks?: boolean
  /**
   * A listening socket handle (from `TrafficProxy.listenHandle` of an earlier process, passed over IPC) to
   * serve on instead of binding `listenHost:listenPort`.
   */
  readonly listenHandle?: object
  readonly log?: ProxyLog
}

/** What `setBackends` reports once every removed backend is drained. */
export interface SwapResult {
  /** Ids of the removed backends (each finished its traffic or was closed at the drain timeout). */
  readonly drained: string[]
  /** The subset of `drained` whose traffic was still in flight at the drain timeout and was closed. */
  readonly forced: string[]
}

/** Counters per backend id; `failed` counts client-visible failures (no backend could take it). */
export interface ProxyStats {
  /** Connections (tcp) or requests (http) in flight now. */
  readonly active: Record<string, number>
  /** Connections or requests dispatched so far, including attempts that failed over. */
  readonly total: Record<string, number>
  readonly failed: number
}

/** A running proxy. */
export interface TrafficProxy {
  /** The address really bound (the actual port when `listenPort` was 0). */
  readonly address: { host: string; port: number }
  /** The listening socket's handle, for a supervising process to hold and pass to the next daemon. */
  readonly listenHandle: object
  /**
   * Atomically replaces the backend set: new connections and requests go only to `backends` from the moment
   * this is called. Traffic in flight to removed backends finishes (up to `drainTimeoutMs`, then it is
   * closed); the promise resolves when every removed backend is drained.
   */
  setBackends(backends: readonly Backend[]): Promise<SwapResult>
  /** The current backend set. */
  backends(): Backend[]
  /** The backends of the set that are out of rotation now (failed checks or requests). */
  ejected(): Ejection[]
  stats(): ProxyStats
  /** Stops listening, drains in-flight traffic (up to `drainTimeoutMs`), then closes every connection. */
  close(): Promise<void>
}
