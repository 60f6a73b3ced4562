import assert from 'node:assert/strict'
import { type Agent, createServer, request, type Server } from 'node:http'
import {
  type AddressInfo,
  connect,
  createServer as createTcpServer,
  type Server as TcpServer,
} from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Backend } from './types.js'

/** A test backend: its `Backend` entry and a way to stop it (refusing new connections afterwards). */
export interface TestBackend {
  readonly backend: Backend
  stop(): Promise<void>
}

/**
 * Starts an HTTP backend on 127.0.0.1:0 that answers its id. `/slow?ms=N` answers after N ms, `/hang`
 * never answers, `/echo` answers the request body; every answer carries `x-backend` and the
 * `x-forwarded-for` it received as `x-seen-xff`.
 */
export async function startHttpBackend(id: string): Promise<TestBackend> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const headers = { 'x-backend': id, 'x-seen-xff': String(req.headers['x-forwarded-for'] ?? '') }
    if (url.pathname === '/hang') return
    if (url.pathname === '/echo') {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => res.writeHead(200, headers).end(`${id} ${req.method} ${Buffer.concat(chunks)}`))
      return
    }
    const ms = Number(url.searchParams.get('ms') ?? 0)
    const answer = (): void => {
      res.writeHead(200, headers).end(id)
    }
    if (ms > 0) setTimeout(answer, ms)
    else answer()
  })
  return { backend: { id, ...(await listenLoopback(server)) }, stop: () => stopServer(server) }
}

/** Starts a TCP backend on 127.0.0.1:0 that writes `<id>:` on connect, then echoes what it receives. */
export async function startEchoBackend(id: string): Promise<TestBackend> {
  const server = createTcpServer((socket) => {
    socket.on('error', () => {})
    socket.write(`${id}:`)
    socket.pipe(socket)
  })
  return { backend: { id, ...(await listenLoopback(server)) }, stop: () => stopServer(server) }
}

async function listenLoopback(server: Server | TcpServer): Promise<{ host: string; port: number }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { host: '127.0.0.1', port: (server.address() as AddressInfo).port }
}

function stopServer(server: Server | TcpServer): Promise<void> {
  if (!server.listening) return Promise.resolve()
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  if ('closeAllConnections' in server) server.closeAllConnections()
  return closed
}

/** The status, `x-backend` and body of one request through `agent`. */
export interface Reply {
  readonly status: number
  readonly backend: string
  readonly xff: string
  readonly body: string
}

/** Sends one request and collects the reply; rejects on a connection error or after 10 s. */
export function send(
  port: number,
  opts: { path?: string; method?: string; body?: string; agent?: Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: opts.path ?? '/', method: opts.method ?? 'GET', agent: opts.agent },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('error', reject)
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            backend: String(res.headers['x-backend'] ?? ''),
            xff: String(res.headers['x-seen-xff'] ?? ''),
            body,
          }),
        )
      },
    )
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')))
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** Opens a TCP connection, sends `data`, half-closes, and resolves with everything received. */
export function exchange(port: number, data: string, beforeEnd?: Promise<unknown>): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port })
    let got = ''
    socket.setEncoding('utf8')
    socket.setTimeout(10_000, () => socket.destroy(new Error('exchange timed out')))
    socket.on('data', (c: string) => {
      got += c
    })
    socket.on('error', reject)
    socket.on('end', () => resolve(got))
    socket.on('close', () => resolve(got))
    socket.write(data)
    void Promise.resolve(beforeEnd).then(() => socket.end())
  })
}

/** Waits until `count()` grew by `more`; a load that stalls for 30 s fails the test. */
export async function answered(count: () => number, more: number): Promise<void> {
  const target = count() + more
  const deadline = Date.now() + 30_000
  while (count() < target) {
    assert.ok(Date.now() < deadline, `the load stalled at ${count()} requests`)
    await sleep(10)
  }
}
