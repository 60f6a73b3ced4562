import { Agent, type AgentOptions, type ClientRequestArgs } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'

/** Options of a backend's pool: the usual agent options plus how long a spare may wait unused. */
export interface BackendAgentOptions extends AgentOptions {
  /** A spare unused this long is closed by the proxy (default: `timeout`, else 4 000). */
  readonly spareIdleMs?: number
}

const DEFAULT_SPARE_IDLE_MS = 4_000

/**
 * The connection pool to one backend. Keep-alive backends reuse pooled sockets as usual. A backend that
 * closes every connection after one response (busybox httpd, many CGI servers) would otherwise make each
 * request wait for a TCP handshake and the backend's accept (a fork, for busybox); once the proxy has seen
 * such a response (`closesConnections`), the agent keeps one spare connection open ahead of the next
 * request and opens the next spare as soon as one is taken.
 *
 * A spare is only ever used while the backend has said nothing on it: any byte the backend sends unasked
 * (busybox answers `408` after 60 s without a request, then closes), its FIN, an error, or the proxy's own
 * idle limit (`spareIdleMs`, well under the idle timeouts servers use) ends the spare, and a dropped spare
 * is only replaced when the next request needs a connection, so a backend that refuses idle connections
 * never makes the proxy reconnect in a loop.
 */
export class BackendAgent extends Agent {
  #spare: Socket | undefined
  #spareOptions: ClientRequestArgs | undefined
  #closesConnections = false
  #destroyed = false
  readonly #spareIdleMs: number
  /** Spares handed to a request: a reset on one of those is retried like a reset on a reused socket. */
  readonly #handedOut = new WeakSet<object>()

  constructor(opts: BackendAgentOptions) {
    super(opts)
    this.#spareIdleMs = opts.spareIdleMs ?? opts.timeout ?? DEFAULT_SPARE_IDLE_MS
  }

  /** Marks the backend as one that closes each connection after a response: start keeping a spare. */
  noteConnectionClose(): void {
    if (this.#closesConnections) return
    this.#closesConnections = true
    setImmediate(() => this.#refill())
  }

  /** True when `socket` was opened ahead of its request (the backend may have closed it meanwhile). */
  wasSpare(socket: object | null | undefined): boolean {
    return socket != null && this.#handedOut.has(socket)
  }

  override createConnection(
    options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const spare = this.#spare
    this.#spare = undefined
    this.#spareOptions = options
    if (this.#closesConnections) setImmediate(() => this.#refill())
    if (spare !== undefined && isUntouched(spare)) {
      // Removing the 'readable' listener returns the socket to the default mode, so the request's own
      // 'data' listener makes it flow.
      spare.removeAllListeners('readable')
      spare.removeAllListeners('error')
      spare.removeAllListeners('close')
      spare.removeAllListeners('end')
      spare.removeAllListeners('timeout')
      spare.setTimeout(typeof options.timeout === 'number' ? options.timeout : 0)
      this.#handedOut.add(spare)
      return spare
    }
    spare?.destroy()
    return super.createConnection(options, callback)
  }

  override destroy(): void {
    this.#destroyed = true
    this.#spare?.destroy()
    this.#spare = undefined
    super.destroy()
  }

  #refill(): void {
    const o = this.#spareOptions
    if (this.#destroyed || this.#spare !== undefined || o === undefined) return
    const socket = connect({ host: o.host ?? 'localhost', port: Number(o.port), noDelay: true })
    socket.setTimeout(this.#spareIdleMs)
    const drop = (): void => {
      if (this.#spare === socket) this.#spare = undefined
      socket.destroy()
    }
    // Until a request takes it, any sign of life from the backend ends the spare: data or its FIN make the
    // socket readable (without a reader, 'end' would wait behind the unread bytes), or an error, or a close.
    socket.once('readable', drop)
    socket.once('error', drop)
    socket.once('end', drop)
    socket.once('close', drop)
    socket.once('timeout', drop)
    this.#spare = socket
  }
}

/** Open (or still connecting) and nothing received: the backend has not answered or closed it. */
function isUntouched(s: Socket): boolean {
  if (s.destroyed || s.readableLength > 0 || s.readableEnded) return false
  return s.readyState === 'open' || s.connecting
}
