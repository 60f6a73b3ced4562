import {
  type ClientRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request,
  type ServerResponse,
} from 'node:http'
import { type Context, isConnectError, type RouteHooks, routeOrWait } from './context.js'
import type { Route } from './routes.js'

/** Hop-by-hop headers (RFC 9110 7.6.1): they describe one connection and are never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'])
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])
/** Errors of a connection that was open: the backend reset or closed it before answering. */
const CLOSED_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT'])
/**
 * Retries of a request the backend may have seen (reset or closed before any answer, or a 408 on a
 * connection opened earlier). Connect errors are not counted: nothing was sent, and they are bounded by
 * the wait for a backend instead.
 */
const MAX_RESENDS = 3

/** One client request on its way to a backend; `tried` is only allocated on failover. */
interface Exchange {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly headers: OutgoingHttpHeaders
  readonly hasBody: boolean
  deadline: number
  tried: Route[] | undefined
  upstream: ClientRequest | undefined
  bodyStarted: boolean
  responded: boolean
  resends: number
}

/**
 * Returns the request handler of an HTTP-mode proxy: each request goes to the next backend of the current
 * set (per request, so a client keep-alive connection never pins a backend), through that backend's
 * keep-alive pool. A request that fails before any byte of the response reached the client is retried on
 * another backend: always when the connect failed (nothing was sent), and, for an idempotent method whose
 * body was not streamed yet, when the backend reset or closed the connection without an answer or
 * answered `408` on a connection opened before the request (it timed out that connection, not the
 * request; RFC 9110 15.5.9 allows repeating it), or when the backend was ejected (a failed probe, or no
 * response header within `responseTimeoutMs`) while the request waited for its answer. A refused connect
 * and a missing response header eject the backend. A POST or PATCH the backend may have received is never
 * sent twice: it gets 502 (504 when the backend did not answer in time).
 */
export function createHttpHandler(ctx: Context): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const ex: Exchange = {
      req,
      res,
      headers: forwardHeaders(req),
      hasBody:
        req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0',
      deadline: 0,
      tried: undefined,
      upstream: undefined,
      bodyStarted: false,
      responded: false,
      resends: 0,
    }
    res.on('close', () => {
      if (!res.writableFinished) ex.upstream?.destroy()
    })
    route(ctx, ex)
  }
}

const HTTP_HOOKS: RouteHooks<Exchange> = {
  dispatch,
  giveUp(ctx, ex, idle) {
    const ejected = ctx.table.ejected()
    ctx.log?.('no-backend', { mode: 'http', url: ex.req.url, ejected: ejected.map((e) => e.id) })
    if (idle && ejected.length > 0) {
      // every backend fails its checks: say so rather than send traffic to one known to be failing
      const why = ejected.map((e) => `${e.id}: ${e.reason}`).join('; ')
      fail(ctx, ex, 503, `no healthy backend: all ${ejected.length} failing their health checks (${why})\n`)
      return
    }
    fail(ctx, ex, idle ? 503 : 502)
  },
  gone: (ex) => ex.res.destroyed,
}

function route(ctx: Context, ex: Exchange): void {
  routeOrWait(ctx, ex, HTTP_HOOKS)
}

function dispatch(ctx: Context, ex: Exchange, r: Route): void {
  ctx.table.acquire(r)
  const { backend } = r
  const up = request({
    agent: r.agent,
    host: backend.host,
    port: backend.port,
    method: ex.req.method,
    path: ex.req.url,
    headers: ex.headers,
    // responses come from the service's own instances; small servers (busybox httpd CGI) end header lines
    // with a bare LF, which a browser accepts, so the proxy does too. Client requests stay strictly parsed.
    insecureHTTPParser: true,
  })
  ex.upstream = up
  let released = false
  const release = (): void => {
    if (released) return
    released = true
    stopWaiting()
    ctx.table.release(r)
  }
  // Passive checks: no response header within the timeout ejects the backend; its ejection (by any
  // request or probe) sends this request elsewhere when it may be sent again.
  let timer: NodeJS.Timeout | undefined
  const onEjected = (): void => {
    if (ex.upstream !== up || ex.res.destroyed || ex.responded || !mayResend(ex, r)) return
    stopWaiting()
    abandon(ctx, ex, r, up, 'ejected')
    release()
  }
  const stopWaiting = (): void => {
    clearTimeout(timer)
    r.waiting?.delete(onEjected)
  }
  const startTimer = (): void => {
    timer = setTimeout(() => {
      stopWaiting()
      if (ex.upstream !== up || ex.res.destroyed || ex.responded) return
      ctx.table.eject(r, `no response within ${ctx.responseTimeoutMs} ms`)
      if (mayResend(ex, r)) abandon(ctx, ex, r, up, 'response-timeout')
      else {
        ex.upstream = undefined
        up.destroy()
        ctx.log?.('upstream-error', { backend: r.backend.id, code: 'response-timeout', url: ex.req.url })
        fail(ctx, ex, 504)
      }
      release()
    }, ctx.responseTimeoutMs)
  }
  r.waiting?.add(onEjected)
  up.on('close', release)
  up.on('response', (pres) => {
    stopWaiting()
    if (ex.upstream !== up || ex.res.destroyed) return void pres.resume()
    if (pres.statusCode === 408 && staleConnection(r, up) && mayResend(ex, r)) {
      // The backend timed out the connection it had kept, not this request: close it and send again.
      pres.resume()
      up.destroy()
      release()
      ex.resends++
      retry(ctx, ex, r, 'stale-408')
      return
    }
    respond(ex, r, pres)
  })
  up.on('error', (err) => {
    release()
    onUpstreamError(ctx, ex, r, up, err)
  })
  if (!ex.hasBody) {
    startTimer()
    up.end()
    return
  }
  // a body is waited for from when it was all sent: a slow upload is not a slow backend
  up.once('finish', startTimer)
  // The body is streamed only once the socket is connected, so a refused connect leaves it unread and the
  // request can still go to another backend.
  up.once('socket', (socket) => {
    const pump = (): void => {
      if (ex.upstream !== up) return
      ex.bodyStarted = true
      ex.req.pipe(up)
    }
    if (socket.connecting) socket.once('connect', pump)
    else pump()
  })
}

function respond(ex: Exchange, r: Route, pres: IncomingMessage): void {
  ex.responded = true
  const headers = pres.headers
  // A backend that ends each connection after its response: keep a connection open ahead of the next request.
  const conn = headers.connection
  if (conn !== undefined ? conn.toLowerCase() === 'close' : pres.httpVersionMinor === 0)
    r.agent?.noteConnectionClose()
  delete headers.connection
  delete headers['keep-alive']
  delete headers['proxy-connection']
  ex.res.writeHead(pres.statusCode ?? 502, pres.statusMessage, headers)
  pres.on('error', () => ex.res.destroy())
  pres.on('close', () => {
    if (!pres.complete) ex.res.destroy()
  })
  pres.pipe(ex.res)
}

function onUpstreamError(ctx: Context, ex: Exchange, r: Route, up: ClientRequest, err: Error): void {
  if (ex.upstream !== up || ex.res.destroyed) return
  if (ex.responded) {
    ex.res.destroy()
    return
  }
  const code = (err as NodeJS.ErrnoException).code
  if (isConnectError(code)) ctx.table.eject(r, code ?? 'connect failed')
  const again =
    !r.forced && (isConnectError(code) || (code !== undefined && CLOSED_ERRORS.has(code) && mayResend(ex, r)))
  if (!again) {
    ctx.log?.('upstream-error', { backend: r.backend.id, code, url: ex.req.url })
    fail(ctx, ex, 502)
    return
  }
  if (!isConnectError(code)) ex.resends++
  retry(ctx, ex, r, code ?? err.message)
}

/** A request the backend may have seen can go again: idempotent, its body not consumed, retries left. */
function mayResend(ex: Exchange, r: Route): boolean {
  return !r.forced && !ex.bodyStarted && ex.resends < MAX_RESENDS && IDEMPOTENT.has(ex.req.method ?? '')
}

/** The request went out on a connection opened before it: a pooled keep-alive socket or a spare. */
function staleConnection(r: Route, up: ClientRequest): boolean {
  return up.reusedSocket || r.agent?.wasSpare(up.socket) === true
}

function retry(ctx: Context, ex: Exchange, r: Route, why: string): void {
  ctx.log?.('failover', { backend: r.backend.id, code: why })
  // whatever the abandoned request still emits (a late error) is ignored from now on
  ex.upstream = undefined
  if (ex.tried === undefined) ex.tried = []
  ex.tried.push(r)
  route(ctx, ex)
}

/** Gives up on the request on `up` (nothing of its answer reached the client) and sends it again elsewhere. */
function abandon(ctx: Context, ex: Exchange, r: Route, up: ClientRequest, why: string): void {
  ex.resends++
  retry(ctx, ex, r, why)
  up.destroy()
}

const FAIL_BODY: Record<number, string> = {
  502: 'bad gateway\n',
  503: 'no backend available\n',
  504: 'gateway timeout: the backend did not answer in time\n',
}

function fail(ctx: Context, ex: Exchange, status: number, text?: string): void {
  ctx.fail()
  const { res } = ex
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = text ?? FAIL_BODY[status] ?? 'bad gateway\n'
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function forwardHeaders(req: IncomingMessage): OutgoingHttpHeaders {
  const src = req.headers
  const out: OutgoingHttpHeaders = {}
  for (const name in src) if (!HOP_BY_HOP.has(name)) out[name] = src[name]
  const conn = src.connection
  // Headers named in Connection are hop-by-hop too (rare: only look when it is not the usual value).
  if (conn !== undefined && conn !== 'keep-alive' && conn !== 'close') {
    for (const token of conn.split(',')) delete out[token.trim().toLowerCase()]
  }
  const ip = req.socket.remoteAddress ?? ''
  const prior = src['x-forwarded-for']
  out['x-forwarded-for'] = prior === undefined ? ip : `${prior}, ${ip}`
  return out
}
