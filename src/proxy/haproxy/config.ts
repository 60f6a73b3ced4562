import type { RouteCheck, RouteEntry, RouteServer, RoutesFile } from './files.js'

/** How the keeper starts HAProxy: where its runtime API listens, and the listening sockets it passes. */
export interface RenderOptions {
  /** HAProxy's runtime API socket (admin level, mode 0600) */
  readonly socket: string
  /** per route key, the file descriptor (inherited from the keeper) of the route's listening socket */
  readonly fds: Readonly<Record<string, number>>
  /** render every route with its address instead of an fd, for `haproxy -c` (which binds nothing) */
  readonly forCheck?: boolean
  /** the check map of a route (server id → HTTP check path) */
  readonly mapOf: (key: string) => string
}

/** Idempotent methods: the only ones retried once a byte of the request reached a backend. */
const IDEMPOTENT = 'GET HEAD OPTIONS TRACE PUT DELETE'
/** Every server is checked; a server without a health check of its own gets a TCP connect this often. */
export const DEFAULT_CHECK_INTERVAL_MS = 2_000
export const DEFAULT_CHECK_TIMEOUT_MS = 1_000
/** How soon after a connect error of real traffic the server is checked (at most its interval). */
export const FAST_CHECK_MS = 250
/** Passing checks in a row before an ejected server is back in rotation. */
export const RISE = 2

/**
 * The JSON line of one request in the access log. Every string taken from the request goes through
 * HAProxy's `json` converter (quotes, backslashes and control characters escaped, invalid UTF-8
 * dropped), so no request can break the line.
 */
const ACCESS_LOG_FORMAT = [
  '"time":"%tr"',
  '"frontend":"%f"',
  '"backend":"%b"',
  '"server":"%s"',
  '"client":"%ci:%cp"',
  '"method":"%[capture.req.method,json(utf8s)]"',
  '"uri":"%[capture.req.uri,json(utf8s)]"',
  // HAProxy parsed it: HTTP/x.y, nothing else reaches a log line
  '"version":"%HV"',
  '"status":%ST',
  '"bytes":%B',
  '"tr_ms":%Tr',
  '"tt_ms":%Ta',
  '"retries":"%rc"',
  '"termination":"%ts"',
]

/**
 * Renders HAProxy's configuration for `routes`. Pure: the same routes and fds give the same text. Routes
 * without an fd (their port could not be bound) are left out.
 */
export function renderConfig(routes: RoutesFile, opts: RenderOptions): string {
  const entries = Object.entries(routes.routes)
    .filter(([key]) => opts.forCheck === true || opts.fds[key] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const maxDrainS = Math.ceil(Math.max(30_000, ...entries.map(([, r]) => r.drainTimeoutMs)) / 1000)
  const logged = entries.some(([, r]) => r.accessLog)
  const lines = [
    '# Rendered by Grail from routes.json at each start of HAProxy: edits here are lost.',
    'global',
    `  stats socket ${opts.socket} mode 600 level admin`,
    '  stats timeout 30s',
    // a process replaced by a reload (or stopped) gets the longest drain to finish its connections
    `  hard-stop-after ${maxDrainS + 5}s`,
    ...(logged ? ['  log stdout format raw local0'] : []),
    '',
    'defaults',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout client-fin 5s',
    '  timeout http-request 30s',
    '  timeout http-keep-alive 60s',
    '  timeout tunnel 1h',
    '  timeout queue 5s',
    '',
  ]
  for (const [key, r] of entries) {
    const bind = opts.forCheck === true ? formatAddress(r.listen.host, r.listen.port) : `fd@${opts.fds[key]}`
    lines.push(...renderRoute(key, r, bind, opts.mapOf(key)), '')
  }
  return `${lines.join('\n')}\n`
}

function renderRoute(key: string, r: RouteEntry, bind: string, map: string): string[] {
  const ssl = r.tls === undefined ? '' : ` ssl crt ${r.tls.pem} alpn h2,http/1.1`
  const front = [`frontend in.${key}`, `  mode ${r.mode}`, `  bind ${bind}${ssl}`, `  default_backend ${key}`]
  if (r.accessLog && r.mode === 'http') {
    front.push('  log global', `  log-format "{${ACCESS_LOG_FORMAT.join(',').replaceAll('"', '\\"')}}"`)
  } else {
    front.push('  no log')
  }
  const back = [
    `backend ${key}`,
    `  mode ${r.mode}`,
    '  balance roundrobin',
    '  retries 3',
    '  option redispatch 1',
    `  timeout server ${r.responseTimeoutMs}ms`,
    `  timeout check ${r.check?.timeout ?? DEFAULT_CHECK_TIMEOUT_MS}ms`,
  ]
  if (r.mode === 'http') {
    back.push(
      // a request that reached no backend is retried on another; one that was sent only when idempotent
      '  retry-on conn-failure empty-response response-timeout',
      `  http-request disable-l7-retry unless { method ${IDEMPOTENT} }`,
      // hop-by-hop (RFC 9110, 7.6.1): the backend's idle timeout is not the client's
      '  http-response del-header Keep-Alive',
    )
    if (r.check?.type === 'http') {
      // each server GETs its own path: the map is changed at runtime as servers come and go
      back.push(
        '  option httpchk',
        `  http-check send meth GET uri-lf "%[srv_name,map(${map},/)]"`,
        `  http-check expect status ${r.check.expectStatus}`,
      )
    }
  }
  for (const s of r.servers) back.push(`  server ${s.id} ${serverArgs(s, r.check)}`)
  return [...front, '', ...back]
}

/**
 * The arguments of a `server` line or a runtime `add server`: address, active check, passive ejection.
 * A server whose own check is a TCP connect, in a route whose servers are checked over HTTP, gets no
 * active check (HAProxy checks a backend's servers one way): connect failures are still retried
 * elsewhere, and Grail's own probes still judge it.
 */
export function serverArgs(s: RouteServer, route: RouteCheck | undefined): string {
  // pool-max-conn -1 and pool-purge-delay 5s, the defaults of a server in the configuration: a dynamic
  // server keeps no idle connection otherwise (HAProxy 2.6), and every request
  // of a keep-alive client then waits for a new connection to the backend (a third of the throughput)
  const addr = `${formatAddress(s.host, s.port)} pool-max-conn -1 pool-purge-delay 5s`
  if (route?.type === 'http' && s.check?.type !== 'http') return addr
  const port = s.check?.port ?? s.port
  const inter = s.check?.interval ?? DEFAULT_CHECK_INTERVAL_MS
  // a connect error of real traffic brings the next check forward (it is retried elsewhere meanwhile);
  // the check decides, so that an instance slow to accept under a burst is not ejected for it alone
  const fast = Math.min(inter, FAST_CHECK_MS)
  return `${addr} check port ${port} inter ${inter}ms fastinter ${fast}ms fall 1 rise ${RISE} observe layer4 error-limit 1 on-error fastinter`
}

/** The lines of a route's check map: every server checked over HTTP, and its path. */
export function renderCheckMap(r: RouteEntry): string {
  const lines = r.servers.flatMap((s) => (s.check?.type === 'http' ? [`${s.id} ${s.check.path}`] : []))
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`
}

function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
