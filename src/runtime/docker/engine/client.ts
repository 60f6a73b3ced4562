/**
 * A client of the Docker Engine API (and of Podman's Docker-compatible service) on undici. It knows
 * HTTP, the API version it speaks and how the engine reports errors; it knows nothing of instances,
 * images or Grail's labels (the provider does). Every request goes to `/v<version>/…`, the version
 * negotiated once with `GET /version`: the engine's own, capped at what Grail was written against, and
 * refused below the floor (API 1.41: Docker 20.10, Podman 4.3).
 */
import type { Readable } from 'node:stream'
import { Agent, type Dispatcher } from 'undici'
import { GrailError } from '../../../errors.js'

/** The oldest API Grail drives (Docker 20.10 as in Debian 12; Podman 4.3's compatible service). */
export const API_FLOOR = '1.41'
/** The newest API Grail was written against; a newer engine is spoken to at this version. */
export const API_CEILING = '1.43'

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE'

/** How to reach an engine: the undici dispatcher and the origin to address it by. */
export interface EngineTransport {
  /** what the user named (`unix:///run/docker.sock`, `tcp://10.0.0.2:2376`), for messages */
  endpoint: string
  /** `http://localhost` for a socket, `https://host:port` for TLS */
  origin: string
  dispatcher: Dispatcher
  /** frees what the transport holds (an ssh forward, sockets) */
  close(): Promise<void>
}

export interface EngineRequest {
  method: Method
  /** the API path without the version prefix: `/containers/json` */
  path: string
  query?: Record<string, string | number | boolean | undefined>
  /** an object is sent as JSON; a Buffer or stream as given, with `contentType` */
  body?: unknown
  contentType?: string
  headers?: Record<string, string>
  /** the statuses that are not errors (default: 2xx) */
  ok?: number[]
  signal?: AbortSignal
  /** ms to wait for the response headers (default 60 s; 0 for streams that stay quiet, like events) */
  headersTimeoutMs?: number
}

export interface EngineResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Dispatcher.ResponseData['body']
}

export interface EngineVersion {
  /** the API version requests use */
  api: string
  /** what the engine reports of itself */
  engineApi: string
  version: string
  /** 'docker' or 'podman' (Podman names a component "Podman Engine") */
  kind: 'docker' | 'podman'
  os: string
  arch: string
}

const num = (v: string): number[] => v.split('.').map((p) => Number.parseInt(p, 10))

/** Compares two API versions ("1.41" < "1.43"). */
export function compareApi(a: string, b: string): number {
  const [x, y] = [num(a), num(b)]
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

export class EngineClient {
  readonly transport: EngineTransport
  private negotiated: EngineVersion | undefined

  constructor(transport: EngineTransport) {
    this.transport = transport
  }

  get endpoint(): string {
    return this.transport.endpoint
  }

  /** The engine's version, asked once; ENGINE_TOO_OLD below API_FLOOR. */
  async version(): Promise<EngineVersion> {
    if (this.negotiated) return this.negotiated
    const res = await this.raw({ method: 'GET', path: '/version' }, '')
    const v = (await readJson(res, this.endpoint)) as {
      ApiVersion?: string
      Version?: string
      Os?: string
      Arch?: string
      Components?: Array<{ Name?: string }>
    }
    const engineApi = v.ApiVersion ?? '0'
    if (compareApi(engineApi, API_FLOOR) < 0) {
      throw new GrailError(
        'ENGINE_TOO_OLD',
        `the engine at ${this.endpoint} speaks API ${engineApi} (version ${v.Version ?? 'unknown'}); Grail needs ${API_FLOOR} or newer`,
        { hint: 'use Docker 20.10 or newer, or Podman 4.3 or newer' },
      )
    }
    const podman = (v.Components ?? []).some((c) => /podman/i.test(c.Name ?? ''))
    this.negotiated = {
      api: compareApi(engineApi, API_CEILING) > 0 ? API_CEILING : engineApi,
      engineApi,
      version: v.Version ?? 'unknown',
      kind: podman ? 'podman' : 'docker',
      os: v.Os ?? 'unknown',
      arch: v.Arch ?? 'unknown',
    }
    return this.negotiated
  }

  /** A request at the negotiated version; a status outside `ok` is ENGINE_ERROR with the engine's message. */
  async request(req: EngineRequest): Promise<EngineResponse> {
    const { api } = await this.version()
    const res = await this.raw(req, `/v${api}`)
    const ok = req.ok ?? []
    if ((res.status >= 200 && res.status < 300) || ok.includes(res.status)) return res
    throw await engineError(res, req, this.endpoint)
  }

  /** A request whose answer is JSON (undefined for 204 and for a status in `ok` outside 2xx). */
  async json<T>(req: EngineRequest): Promise<T> {
    const res = await this.request(req)
    if (res.status === 204 || res.status >= 300) {
      await res.body.dump()
      return undefined as T
    }
    return (await readJson(res, this.endpoint)) as T
  }

  /** A request whose answer does not matter beyond its status. */
  async call(req: EngineRequest): Promise<number> {
    const res = await this.request(req)
    await res.body.dump()
    return res.status
  }

  async close(): Promise<void> {
    await this.transport.close()
  }

  private async raw(req: EngineRequest, prefix: string): Promise<EngineResponse> {
    const headers: Record<string, string> = { ...req.headers }
    let body: Buffer | string | Readable | undefined
    if (req.body !== undefined) {
      if (Buffer.isBuffer(req.body) || typeof (req.body as Readable).pipe === 'function') {
        body = req.body as Buffer | Readable
        headers['content-type'] = req.contentType ?? 'application/x-tar'
      } else {
        body = JSON.stringify(req.body)
        headers['content-type'] = 'application/json'
      }
    }
    const query = new URLSearchParams()
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) query.set(k, String(v))
    const qs = query.size > 0 ? `?${query.toString()}` : ''
    try {
      const res = await this.transport.dispatcher.request({
        origin: this.transport.origin,
        method: req.method,
        path: `${prefix}${req.path}${qs}`,
        headers,
        body,
        signal: req.signal,
        headersTimeout: req.headersTimeoutMs ?? 60_000,
        bodyTimeout: 0,
      })
      return { status: res.statusCode, headers: res.headers, body: res.body }
    } catch (err) {
      throw unreachable(err, this.endpoint)
    }
  }
}

/** A connection that failed: ENGINE_UNREACHABLE (or ENGINE_TLS), naming the endpoint and what to check. */
export function unreachable(err: unknown, endpoint: string): Error {
  if (err instanceof GrailError || (err instanceof Error && err.name === 'AbortError')) return err
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException }
  const code = e.code ?? e.cause?.code ?? ''
  const why = e.cause?.message ?? e.message
  if (/CERT|SSL|TLS|SELF_SIGNED|ERR_TLS/i.test(code) || /certificate|tls/i.test(why)) {
    return new GrailError('ENGINE_TLS', `the engine at ${endpoint} refused the TLS connection: ${why}`, {
      hint: 'check the CA, client certificate and key the environment gives (tls: {ca, cert, key})',
      cause: err,
    })
  }
  const hint =
    code === 'ENOENT' || code === 'ECONNREFUSED'
      ? 'is the engine running, and is this its address? (dockerd, or `podman system service`)'
      : code === 'EACCES'
        ? 'this user may not open the socket: run as a user in its group, or use the user’s own (rootless) socket'
        : 'check the endpoint and that the engine is reachable from this machine'
  return new GrailError('ENGINE_UNREACHABLE', `cannot reach the engine at ${endpoint}: ${code || why}`, {
    hint,
    cause: err,
  })
}

async function readJson(res: EngineResponse, endpoint: string): Promise<unknown> {
  const text = await res.body.text()
  try {
    return JSON.parse(text)
  } catch {
    throw new GrailError(
      'ENGINE_ERROR',
      `the engine at ${endpoint} answered with something that is not JSON`,
      {
        hint: 'is this a Docker or Podman API endpoint?',
        details: [text.slice(0, 200)],
      },
    )
  }
}

async function engineError(res: EngineResponse, req: EngineRequest, endpoint: string): Promise<GrailError> {
  const text = await res.body.text().catch(() => '')
  let message = text.trim()
  try {
    const parsed = JSON.parse(text) as { message?: string; cause?: string }
    message = parsed.message ?? message
  } catch {
    // not JSON: the text as it came
  }
  return new GrailError(
    'ENGINE_ERROR',
    `the engine at ${endpoint} refused ${req.method} ${req.path} (${res.status}): ${message.slice(0, 500)}`,
    { hint: 'the message above is the engine’s own' },
  )
}

/** A transport over a unix socket (`unix:///run/docker.sock`). */
export function unixTransport(endpoint: string, socketPath: string): EngineTransport {
  const agent = new Agent({ connect: { socketPath }, pipelining: 0, keepAliveTimeout: 10_000 })
  return {
    endpoint,
    origin: 'http://localhost',
    dispatcher: agent,
    close: () => agent.close(),
  }
}
