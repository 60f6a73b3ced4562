import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'

export interface HttpResult {
  status: number
  headers: IncomingHttpHeaders
  text: string
  /** the body parsed as JSON, or undefined when it is not JSON */
  json: unknown
}

/** One HTTP(S) request with node:http (a CA for a test certificate); the whole body is read. */
export function httpCall(
  url: string,
  opts: {
    method?: string
    token?: string
    body?: unknown
    rawBody?: string
    headers?: Record<string, string>
    ca?: string
  } = {},
): Promise<HttpResult> {
  const u = new URL(url)
  const body = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body))
  const headers: Record<string, string> = {
    ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    ...(opts.token !== undefined ? { Authorization: `Bearer ${opts.token}` } : {}),
    ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}),
    ...opts.headers,
  }
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = request(
      u,
      { method: opts.method ?? 'GET', headers, ...(opts.ca ? { ca: opts.ca } : {}) },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          text += c
        })
        res.on('end', () => {
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** A server-sent event stream being read: the frames so far, and a wait for one that matches. */
export interface SseReader {
  res: IncomingMessage
  text(): string
  /** resolves with the parsed data of the first event whose data matches (within `ms`) */
  waitFor(pred: (data: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>
  /** resolves when the server ends the stream */
  ended: Promise<void>
  close(): void
}

/** Opens `url` as an event stream (GET, Accept: text/event-stream) and reads it as it comes. */
export function openSse(
  url: string,
  opts: { token?: string; lastEventId?: number } = {},
): Promise<SseReader> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      new URL(url),
      {
        headers: {
          Accept: 'text/event-stream',
          ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.lastEventId !== undefined ? { 'Last-Event-ID': String(opts.lastEventId) } : {}),
        },
      },
      (res) => {
        let buf = ''
        const waiters = new Set<() => void>()
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          buf += c
          for (const w of [...waiters]) w()
        })
        const ended = new Promise<void>((done) => res.on('close', () => done()))
        const events = (): Array<Record<string, unknown>> =>
          buf
            .split('\n\n')
            .flatMap((frame) => frame.split('\n').filter((l) => l.startsWith('data: ')))
            .map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>)
        resolve({
          res,
          text: () => buf,
          ended,
          close: () => req.destroy(),
          waitFor: (pred, ms = 10_000) =>
            new Promise((ok, fail) => {
              const check = () => {
                const hit = events().find(pred)
                if (!hit) return
                waiters.delete(check)
                clearTimeout(timer)
                ok(hit)
              }
              const timer = setTimeout(() => {
                waiters.delete(check)
                fail(new Error(`no matching event within ${ms} ms; stream so far:\n${buf}`))
              }, ms)
              waiters.add(check)
              check()
            }),
        })
      },
    )
    req.on('error', reject)
    req.end()
  })
}
