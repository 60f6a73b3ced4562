import { chmod, unlink } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { GrailError, isErrno } from '../errors.js'
import { type DaemonArgs, DaemonExit, parseBackends, type ProxyStatus } from './daemon-protocol.js'
import { startProxy } from './index.js'
import { readBackendState, writeBackendState } from './state-file.js'
import type { ProxyLog, SwapResult, TrafficProxy } from './types.js'

/** A running daemon: the proxy plus its control server. `done` resolves with the exit code once it stopped. */
export interface Daemon {
  readonly proxy: TrafficProxy
  /** Drains, closes the proxy and the control socket; idempotent. */
  shutdown(reason: string): Promise<void>
  readonly done: Promise<number>
}

/** Largest control request body accepted (a backend list of thousands of entries fits in 1 MiB). */
const MAX_BODY = 1 << 20

/**
 * Runs one service's proxy as a long-lived process: restores the persisted backend list, starts the proxy
 * on `--listen` (or on the listening socket a restarting keeper passed, `opts.listenHandle`), then serves the control API on the unix socket `--control`: `GET /status`,
 * `PUT /backends` (answers after the swap's drain with the SwapResult) and `POST /shutdown`. Throws a
 * GrailError carrying the exit code in `exitCode` when it cannot start.
 */
export async function runDaemon(
  args: DaemonArgs,
  log: ProxyLog,
  opts: { listenHandle?: object; supervisor?: () => Promise<number | null> } = {},
): Promise<Daemon> {
  const restored = await startupStep(DaemonExit.badState, () => readBackendState(args.state))
  const proxy = await startupStep(DaemonExit.listenFailed, () =>
    startProxy({
      listenHost: args.listenHost,
      listenPort: args.listenPort,
      mode: args.mode,
      drainTimeoutMs: args.drainTimeoutMs,
      listenHandle: opts.listenHandle,
      log,
    }),
  )
  // The set was empty, so nothing drains: the restored routes serve from the first request on.
  if (restored.length > 0) void proxy.setBackends(restored)
  log('restored', { backends: restored.map((b) => b.id), state: args.state })

  let finish: (code: number) => void = () => {}
  const done = new Promise<number>((resolve) => {
    finish = resolve
  })
  // Swaps are applied in the order they arrive; each persists its list before it takes effect, so the
  // state file always holds the newest list a client was (or is about to be) told about.
  let order: Promise<unknown> = Promise.resolve()
  const applyBackends = (body: unknown): Promise<SwapResult> => {
    const backends = parseBackends((body as { backends?: unknown } | null)?.backends, 'PUT /backends')
    const swapped = order.then(async () => {
      await writeBackendState(args.state, backends)
      return { swap: proxy.setBackends(backends) }
    })
    // the caller gets the failure from `swapped`; the chain only orders the next swap after this one
    order = swapped.catch(() => {})
    return swapped.then((s) => s.swap)
  }

  let trafficStopped: Promise<void> | undefined
  let stopped: Promise<void> | undefined
  const control: Server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => reply(res, errorStatus(err), errorBody(err)))
  })
  const stopTraffic = (reason: string): Promise<void> => {
    if (trafficStopped === undefined) {
      log('shutdown', { reason })
      trafficStopped = proxy.close()
    }
    return trafficStopped
  }
  const shutdown = (reason: string): Promise<void> => {
    stopped ??= (async () => {
      await stopTraffic(reason)
      await new Promise<void>((resolve) => {
        control.close(() => resolve())
        control.closeIdleConnections()
      })
      await unlinkIfPresent(args.control)
      finish(DaemonExit.ok)
    })()
    return stopped
  }
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const route = `${req.method} ${req.url}`
    if (route === 'GET /status') {
      const status: ProxyStatus = {
        pid: process.pid,
        listen: { host: args.listenHost, port: args.listenPort },
        mode: args.mode,
        backends: proxy.backends(),
        ejected: proxy.ejected(),
        stats: proxy.stats(),
        supervisor: (await opts.supervisor?.()) ?? null,
      }
      return reply(res, 200, status)
    }
    if (route === 'PUT /backends') {
      if (trafficStopped !== undefined)
        return reply(res, 503, { code: 'PROXY_STOPPING', message: 'shutting down' })
      return reply(res, 200, await applyBackends(await readJson(req)))
    }
    if (route === 'POST /shutdown') {
      res.shouldKeepAlive = false
      await stopTraffic('control')
      reply(res, 200, { stopped: true })
      res.on('finish', () => void shutdown('control'))
      return
    }
    reply(res, 404, { code: 'PROXY_CONTROL_ROUTE', message: `no control route ${route}` })
  }

  await startupStep(DaemonExit.controlInUse, () => listenControl(control, args.control))
  log('control', { socket: args.control })
  return { proxy, shutdown, done }
}

/** Runs one startup step; a failure becomes a GrailError carrying the exit code the supervisor reads. */
async function startupStep<T>(exitCode: number, step: () => Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (err) {
    const inUse = err instanceof GrailError && isErrno(err.cause, 'EADDRINUSE')
    const code = exitCode === DaemonExit.listenFailed && inUse ? DaemonExit.portInUse : exitCode
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { exitCode: code })
  }
}

/**
 * Listens on the unix socket, owner-only. A socket file left by a dead daemon (connect refused) is
 * removed first; one that still answers belongs to a live daemon and is an error.
 */
async function listenControl(server: Server, path: string): Promise<void> {
  const tryListen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => {
        server.off('error', reject)
        resolve()
      })
    })
  try {
    await tryListen()
  } catch (err) {
    if (!isErrno(err, 'EADDRINUSE') || (await socketAnswers(path))) {
      throw new GrailError('PROXY_CONTROL_IN_USE', `the control socket ${path} is held by a live process`, {
        cause: err,
      })
    }
    await unlinkIfPresent(path)
    await tryListen()
  }
  await chmod(path, 0o600)
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path)
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY)
        req.destroy(new GrailError('PROXY_CONTROL_BODY', 'control request body over 1 MiB'))
      else chunks.push(c)
    })
    req.on('error', reject)
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
      } catch (err) {
        reject(new GrailError('PROXY_CONTROL_BODY', 'control request body is not JSON', { cause: err }))
      }
    })
  })
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return void res.destroy()
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function errorStatus(err: unknown): number {
  return err instanceof GrailError ? 400 : 500
}

function errorBody(err: unknown): object {
  if (err instanceof GrailError) return { code: err.code, message: err.message, hint: err.hint }
  return { code: 'PROXY_INTERNAL', message: err instanceof Error ? err.message : String(err) }
}
