import { readFile } from 'node:fs/promises'
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { GrailError, isErrno } from '../../errors.js'
import type { ServerContext } from '../context.js'
import { authorize, isLoopback } from './auth.js'
import { checkBody, readJsonBody } from './body.js'
import { EventStreams } from './event-stream.js'
import type { DriftCache } from './fleet-metrics.js'
import { openApiDocument, openApiRoute } from './openapi.js'
import { sendError, sendJson } from './respond.js'
import { matchRoute, type Route } from './router.js'
import { readRoutes } from './routes-read.js'
import { writeRoutes } from './routes-write.js'
import { serveStatic } from './static.js'

export { isLoopback } from './auth.js'
export { openApiDocument } from './openapi.js'

/** How `grail serve` listens. */
export interface HttpServerOptions {
  host: string
  /** 0: an ephemeral port (the returned url has the real one) */
  port: number
  /** PEM files: certificate (chain) and key */
  tls?: { cert: string; key: string }
  /** reads without a token; refused unless `host` is a loopback address */
  insecureRead: boolean
  /** the built dashboard, served at `/` */
  dashboardDir: string
  /** the event stream's heartbeat (default 15 s) */
  heartbeatMs?: number
  /**
   * what `grail outdated --json` prints (the patch pipeline's report), served at /api/v1/outdated;
   * without it that path is 404
   */
  outdated?: () => Promise<unknown>
}

/** The route table of a server for `ctx`: the API, its document and the metrics. */
export function apiRoutes(
  ctx: ServerContext,
  opts: {
    streams: EventStreams
    heartbeatMs: number
    driftCache: DriftCache
    outdated?: () => Promise<unknown>
  },
): Route[] {
  const routes: Route[] = [...readRoutes({ ctx, ...opts }), ...writeRoutes(ctx)]
  let doc: Record<string, unknown> | undefined
  const self = openApiRoute(() => {
    doc ??= openApiDocument([...routes, self])
    return doc
  })
  return [...routes, self]
}

async function readTls(tls: { cert: string; key: string }): Promise<{ cert: Buffer; key: Buffer }> {
  try {
    return { cert: await readFile(tls.cert), key: await readFile(tls.key) }
  } catch (err) {
    const file = (err as NodeJS.ErrnoException).path ?? tls.cert
    throw new GrailError('API_TLS', `cannot read the API's TLS file ${file}: ${(err as Error).message}`, {
      hint: 'pass --tls-cert and --tls-key files (PEM) that this user can read',
    })
  }
}

/**
 * Starts the HTTP(S) server of `grail serve`: the API under /api/v1 (bearer tokens, JSON), its OpenAPI
 * document at /api/openapi.json, /metrics, and the dashboard's files at /. Refuses insecure reads on an
 * address that is not loopback (API_INSECURE_READ). `close()` ends the event streams, then the server.
 */
export async function startHttpServer(
  ctx: ServerContext,
  opts: HttpServerOptions,
): Promise<{ url: string; close(): Promise<void> }> {
  if (opts.insecureRead && !isLoopback(opts.host)) {
    throw new GrailError(
      'API_INSECURE_READ',
      `--insecure-read is only allowed on a loopback address, and the API would listen on ${opts.host}`,
      { hint: 'listen on 127.0.0.1 (or ::1), or drop --insecure-read and give readers a read token' },
    )
  }
  const streams = new EventStreams()
  const routes = apiRoutes(ctx, {
    streams,
    heartbeatMs: opts.heartbeatMs ?? 15_000,
    driftCache: new Map(),
    ...(opts.outdated ? { outdated: opts.outdated } : {}),
  })
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const started = Date.now()
    res.on('finish', () =>
      ctx.log.debug(
        {
          method: req.method,
          path: req.url?.split('?')[0],
          status: res.statusCode,
          ms: Date.now() - started,
        },
        'http',
      ),
    )
    handle(ctx, routes, opts, req, res).catch((err: unknown) => {
      if (!(err instanceof GrailError))
        ctx.log.error({ err, method: req.method, path: req.url?.split('?')[0] }, 'http: internal error')
      sendError(res, err)
    })
  }
  let server: Server
  if (opts.tls) {
    const files = await readTls(opts.tls)
    try {
      server = createHttpsServer(files, handler)
    } catch (err) {
      throw new GrailError(
        'API_TLS',
        `the API's TLS certificate ${opts.tls.cert} or key ${opts.tls.key} is not usable: ${(err as Error).message}`,
        {
          hint: 'pass a PEM certificate and the key it was made for',
        },
      )
    }
  } else server = createHttpServer(handler)
  // a request's body is at most 64 KiB: a client that takes longer than this to send one is not served
  // (the answer to a write may take minutes: that time does not count)
  server.headersTimeout = 20_000
  server.requestTimeout = 30_000
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      reject(
        new GrailError('API_LISTEN', `the API cannot listen on ${opts.host}:${opts.port}: ${err.message}`, {
          hint: isErrno(err, 'EADDRINUSE')
            ? 'another process holds the port: stop it or choose another --listen'
            : 'choose another --listen address',
        }),
      )
    }
    server.once('error', onError)
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `${opts.tls ? 'https' : 'http'}://${host}:${address.port}`
  ctx.log.info({ url, tls: opts.tls !== undefined, insecureRead: opts.insecureRead }, 'http: listening')
  let closing: Promise<void> | undefined
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        streams.closeAll()
        server.close(() => resolve())
        server.closeIdleConnections()
      })
      return closing
    },
  }
}

async function handle(
  ctx: ServerContext,
  routes: readonly Route[],
  opts: HttpServerOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://grail')
  const path = url.pathname
  const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET')
  if (path === '/metrics' || path.startsWith('/api/')) {
    const match = matchRoute(routes, method, path)
    if (match.kind === 'none')
      throw new GrailError('API_NOT_FOUND', `no API path ${path}`, { hint: 'see /api/openapi.json' })
    if (match.kind === 'method')
      throw new GrailError('API_METHOD_NOT_ALLOWED', `${path} does not take ${req.method}`, {
        hint: `it takes ${match.allow.join(', ')}`,
        details: match.allow,
      })
    const { route, params } = match
    // who may call it is decided before the body is read, and a refusal changes nothing
    const token = authorize(ctx.db, req, route.access, { insecureRead: opts.insecureRead })
    let body: Record<string, unknown> = {}
    if (route.body) {
      body = await readJsonBody(req)
      checkBody(body, route.body)
    }
    const out = await route.handle({ params, query: url.searchParams, token, body, req, res })
    if (out !== 'streamed') sendJson(res, out.status ?? 200, out.json)
    return
  }
  if (method !== 'GET')
    throw new GrailError('API_METHOD_NOT_ALLOWED', `${path} does not take ${req.method}`, {
      hint: 'it takes GET',
      details: ['GET', 'HEAD'],
    })
  if (!(await serveStatic(opts.dashboardDir, path, res, req.method === 'HEAD')))
    throw new GrailError('API_NOT_FOUND', `no file ${path}`, { hint: 'the dashboard is at /' })
}
