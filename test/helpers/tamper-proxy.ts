// A proxy in front of a TestRegistry that misbehaves on purpose: it flips one byte of chosen blobs on the
// way to the client (same length, same headers, so only a digest check can tell) or drops the connection
// after a number of body bytes. Fault tests put it between Grail (or skopeo) and the real registry.
import { readFileSync } from 'node:fs'
import {
  createServer as createHttpServer,
  type IncomingMessage,
  request as httpRequest,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https'
import type { TestRegistry } from './registry.js'

export interface TamperProxyOptions {
  /** Flip a byte of `GET /v2/…/blobs/sha256:HEX` bodies when this returns true for `sha256:HEX`. */
  corruptBlob?: (digest: string) => boolean
  /**
   * Drop the connection once this many body bytes of a blob went through, in either direction: blob
   * downloads (`GET …/blobs/…`) and blob uploads (`PATCH`/`PUT …/blobs/uploads/…`). Manifests, tags and
   * other requests pass untouched.
   */
  cutAfterBytes?: number
  /** Serve HTTPS with the registry's server certificate (clients trust `registry.caFile`); default HTTP. */
  tls?: boolean
}

export interface TamperProxy {
  /** `127.0.0.1:PORT` */
  readonly host: string
  readonly port: number
  /** `http(s)://127.0.0.1:PORT` */
  readonly url: string
  /** Requests forwarded so far. */
  readonly requests: number
  /** Digests whose bodies were altered, one entry per altered response. */
  readonly corrupted: readonly string[]
  /** Connections dropped by `cutAfterBytes`. */
  readonly cuts: number
  /** Options can be changed while the proxy runs (for example corrupt only after a first clean pull). */
  readonly options: TamperProxyOptions
  stop(): Promise<void>
}

const BLOB_GET = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/
const BLOB_UPLOAD = /^\/v2\/.+\/blobs\/uploads\//

export async function startTamperProxy(
  target: TestRegistry,
  opts: TamperProxyOptions = {},
): Promise<TamperProxy> {
  const options: TamperProxyOptions = { ...opts }
  const ca = readFileSync(target.caFile)
  const upstream = new URL(target.url)
  const forward = upstream.protocol === 'https:' ? httpsRequest : httpRequest
  const scheme = opts.tls ? 'https' : 'http'
  let requests = 0
  let cuts = 0
  const corrupted: string[] = []

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    requests++
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    const blob = req.method === 'GET' ? BLOB_GET.exec(path)?.[1] : undefined
    const isUpload = (req.method === 'PATCH' || req.method === 'PUT') && BLOB_UPLOAD.test(path)
    const cutAt =
      (blob || isUpload) && options.cutAfterBytes !== undefined ? options.cutAfterBytes : undefined
    const cut = (): void => {
      cuts++
      req.socket.destroy()
      up.destroy()
    }

    // The client's Host stays, plus X-Forwarded-Proto: distribution then builds upload Locations that
    // point back at the proxy, so every later request of the upload goes through it too.
    const up = forward(
      upstream,
      {
        method: req.method,
        path: req.url,
        headers: {
          ...req.headers,
          'x-forwarded-proto': scheme,
          'x-forwarded-host': String(req.headers.host ?? ''),
        },
        ...(upstream.protocol === 'https:' ? { ca } : {}),
        agent: false,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.rawHeaders)
        const flip = blob !== undefined && upRes.statusCode === 200 && (options.corruptBlob?.(blob) ?? false)
        let seen = 0
        let flipped = false
        upRes.on('data', (chunk: Buffer) => {
          if (flip && !flipped && chunk.length > 0) {
            chunk[0] = (chunk[0] ?? 0) ^ 0xff // the first byte of the body: a gzip magic byte no longer
            flipped = true
            if (blob) corrupted.push(blob)
          }
          if (cutAt !== undefined && seen + chunk.length > cutAt) {
            res.write(chunk.subarray(0, Math.max(0, cutAt - seen)))
            cut()
            return
          }
          seen += chunk.length
          res.write(chunk)
        })
        upRes.on('end', () => res.end())
        upRes.on('error', () => res.destroy())
      },
    )
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end()
      else res.destroy()
    })

    let sent = 0
    req.on('data', (chunk: Buffer) => {
      if (isUpload && cutAt !== undefined && sent + chunk.length > cutAt) {
        up.write(chunk.subarray(0, Math.max(0, cutAt - sent)))
        cut()
        return
      }
      sent += chunk.length
      up.write(chunk)
    })
    req.on('end', () => up.end())
  }

  const server: Server = opts.tls
    ? createHttpsServer(
        { cert: readFileSync(target.certs.certFile), key: readFileSync(target.certs.keyFile) },
        handle,
      )
    : createHttpServer(handle)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : 0
  let stopping: Promise<void> | undefined
  return {
    host: `127.0.0.1:${port}`,
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    get requests() {
      return requests
    },
    corrupted,
    get cuts() {
      return cuts
    },
    options,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return stopping
    },
  }
}
