import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { type AddressInfo, createServer as createTcpServer, type Server } from 'node:net'
import { GrailError } from '../errors.js'
import type { Context } from './context.js'
import { createHttpHandler } from './http.js'
import { RouteTable } from './routes.js'
import { createTcpHandler } from './tcp.js'
import type { TrafficProxy, ProxyOptions } from './types.js'

export type {
  Backend,
  BackendCheck,
  Ejection,
  TrafficProxy,
  ProxyLog,
  ProxyOptions,
  ProxyStats,
  SwapResult,
} from './types.js'

const DEFAULT_DRAIN_TIMEOUT_MS = 30_000
const DEFAULT_WAIT_FOR_BACKEND_MS = 5_000
const DEFAULT_RESPONSE_TIMEOUT_MS = 30_000

/**
 * Starts a traffic router on `listenHost:listenPort` with an empty backend set; call `setBackends` with the
 * healthy instances. In `tcp` mode each connection is piped to one backend, in `http` mode each request is
 * routed on its own; both go round robin over the backends in rotation, fail over when a backend refuses
 * the connection, and drain removed backends on a swap. A backend leaves the rotation when its own check
 * fails or when it refuses a connection or does not answer within `responseTimeoutMs` (http), and comes
 * back after `READMIT_PASSES` passing probes. Rejects with PROXY_LISTEN when the address cannot be bound.
 */
export async function startProxy(opts: ProxyOptions): Promise<TrafficProxy> {
  const table = new RouteTable({
    mode: opts.mode,
    drainTimeoutMs: opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    spareIdleMs: opts.spareIdleMs,
    log: opts.log,
    healthChecks: opts.healthChecks,
  })
  let failed = 0
  const ctx: Context = {
    table,
    waitMs: opts.waitForBackendMs ?? DEFAULT_WAIT_FOR_BACKEND_MS,
    responseTimeoutMs: opts.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS,
    log: opts.log,
    fail: () => {
      failed++
    },
  }
  const server: Server | HttpServer =
    opts.mode === 'http'
      ? createHttpServer(createHttpHandler(ctx))
      : createTcpServer({ allowHalfOpen: true, pauseOnConnect: true }, createTcpHandler(ctx))
  await listen(server, opts)
  const bound = server.address() as AddressInfo
  const address = { host: bound.address, port: bound.port }
  opts.log?.('listen', { mode: opts.mode, ...address })

  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
    await table.close()
    if ('closeAllConnections' in server) server.closeAllConnections()
    await stopped
  }
  return {
    address,
    // the libuv handle under the server; Node passes such a handle over IPC without accepting on it
    listenHandle: (server as unknown as { _handle: object })._handle,
    setBackends: (backends) => table.set(backends),
    backends: () => table.backends(),
    ejected: () => table.ejected(),
    stats: () => table.stats(failed),
    close: () => {
      closing ??= close()
      return closing
    },
  }
}

function listen(server: Server, opts: ProxyOptions): Promise<void> {
  const host = opts.listenHost
  const port = opts.listenPort
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(
        new GrailError('PROXY_LISTEN', `the proxy cannot listen on ${host}:${port}: ${err.message}`, {
          hint: 'another process may hold the port; pick another public port or stop that process',
          cause: err,
        }),
      )
    }
    server.once('error', onError)
    const onListening = (): void => {
      server.off('error', onError)
      resolve()
    }
    if (opts.listenHandle !== undefined) server.listen(opts.listenHandle, onListening)
    else server.listen(port, host, onListening)
  })
}
