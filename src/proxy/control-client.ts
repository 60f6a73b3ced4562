import { request } from 'node:http'
import { GrailError, isErrorCode } from '../errors.js'
import type { ProxyStatus } from './daemon-protocol.js'
import type { Backend, SwapResult } from './types.js'

/** Talks to one proxy daemon over its control socket. */
export interface ProxyClient {
  /** Pid of the daemon process. */
  readonly pid: number
  /** Unix socket of the daemon's control API. */
  readonly socketPath: string
  status(): Promise<ProxyStatus>
  /** Swaps the daemon's backend set; resolves once the removed backends are drained. */
  setBackends(backends: readonly Backend[]): Promise<SwapResult>
  /** Drains and stops the daemon; resolves when it answered (its process exits right after). */
  shutdown(): Promise<void>
}

/** Timeout of status calls; a swap or shutdown waits for the drain, so it gets `drainWaitMs` instead. */
const STATUS_TIMEOUT_MS = 2_000

/** A client for the daemon behind `socketPath`. `drainWaitMs` bounds a swap or shutdown (default 60 s). */
export function createProxyClient(opts: {
  socketPath: string
  pid: number
  drainWaitMs?: number
}): ProxyClient {
  const { socketPath, pid } = opts
  const drainWaitMs = opts.drainWaitMs ?? 60_000
  return {
    pid,
    socketPath,
    status: () => controlCall<ProxyStatus>(socketPath, 'GET', '/status', undefined, STATUS_TIMEOUT_MS),
    setBackends: (backends) =>
      controlCall<SwapResult>(socketPath, 'PUT', '/backends', { backends }, drainWaitMs),
    shutdown: async () => {
      await controlCall(socketPath, 'POST', '/shutdown', undefined, drainWaitMs)
    },
  }
}

/**
 * One request to a daemon's control API. Connection errors reject with the raw errno error (callers
 * probing a stale socket check `ENOENT`/`ECONNREFUSED`); an error answer rejects with a GrailError.
 */
export function controlCall<T>(
  socketPath: string,
  method: string,
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body)
    const headers: Record<string, string | number> = { connection: 'close' }
    if (text !== undefined) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = Buffer.byteLength(text)
    }
    const req = request({ socketPath, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8')
        let parsed: unknown
        try {
          parsed = JSON.parse(raw)
        } catch (err) {
          reject(
            new Error(`proxy control ${method} ${path}: answer is not JSON: ${raw.slice(0, 200)}`, {
              cause: err,
            }),
          )
          return
        }
        if (res.statusCode === 200) return resolve(parsed as T)
        const e = parsed as { code?: string; message?: string; hint?: string }
        reject(
          new GrailError(
            isErrorCode(e.code) ? e.code : 'PROXY_CONTROL',
            `proxy ${method} ${path} failed: ${e.message ?? raw}`,
            {
              hint: e.hint,
            },
          ),
        )
      })
    })
    req.setTimeout(timeoutMs, () =>
      req.destroy(
        Object.assign(new Error(`proxy control ${method} ${path} timed out after ${timeoutMs} ms`), {
          code: 'ETIMEDOUT',
        }),
      ),
    )
    req.on('error', reject)
    req.end(text)
  })
}
