import { Agent, type AgentOptions, type ClientRequestArgs } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'

/**
 * The connection pool to one backend. Keep-alive backends reuse pooled sockets as usual. A backend that
 * closes every connection after one response (busybox httpd, many CGI servers) would otherwise make each
 * request wait for a TCP handshake and the backend's accept (a fork, for busybox); once the proxy has seen
 * such a response (`closesConnections`), the agent keeps one spare connection open ahead of the next
 * request and opens the next spare as soon as one is taken. A spare the backend closes while idle is
 * dropped and only replaced when the next request needs a connection, so a backend that refuses idle
 * connections never makes the proxy reconnect in a loop.
 */
export class BackendAgent extends Agent {
  #spare: Socket | undefined
  #spareOptions: ClientRequestArgs | undefined
  #closesConnections = false
  #destroyed = false
  /** Spares handed to a request: a reset on one of those is retried like a reset on a reused socket. */
  readonly #handedOut = new WeakSet<object>()

  constructor(opts: AgentOptions) {
    super(opts)
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
    if (spare !== undefined && !spare.destroyed && (spare.readyState === 'open' || spare.connecting)) {
      spare.removeAllListeners('error')
      spare.removeAllListeners('close')
      spare.removeAllListeners('end')
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
    const socket = connect({ host: o.host ?? '127.0.0.1', port: Number(o.port), noDelay: true })
    if (typeof o.timeout === 'number') socket.setTimeout(o.timeout)
    const drop = (): void => {
      if (this.#spare === socket) this.#spare = undefined
      socket.destroy()
    }
    // Until a request takes it, any sign of life from the backend (an error, its FIN, data) ends the spare.
    socket.once('error', drop)
    socket.once('end', drop)
    socket.once('close', drop)
    this.#spare = socket
  }
}
