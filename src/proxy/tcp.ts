import { connect, type Socket } from 'node:net'
import { type Context, isConnectError, type RouteHooks, routeOrWait } from './context.js'
import type { Route } from './routes.js'

/** One client connection; `tried` is only allocated on failover. */
interface Link {
  readonly client: Socket
  deadline: number
  tried: Route[] | undefined
  upstream: Socket | undefined
}

/**
 * Returns the connection handler of a TCP-mode proxy. The server must be created with `pauseOnConnect`
 * (nothing is read from the client until a backend accepted the connection, so a refused connect is retried
 * on another backend with no byte lost) and `allowHalfOpen` (a half-close travels through the proxy).
 */
export function createTcpHandler(ctx: Context): (client: Socket) => void {
  return (client) => {
    client.setNoDelay(true)
    const link: Link = { client, deadline: 0, tried: undefined, upstream: undefined }
    // An error is always followed by 'close', where the other side is closed too.
    client.on('error', () => {})
    client.on('close', () => link.upstream?.destroy())
    route(ctx, link)
  }
}

const TCP_HOOKS: RouteHooks<Link> = {
  dispatch,
  giveUp(ctx, link) {
    ctx.log?.('no-backend', { mode: 'tcp', client: link.client.remoteAddress })
    ctx.fail()
    link.client.destroy()
  },
  gone: (link) => link.client.destroyed,
}

function route(ctx: Context, link: Link): void {
  routeOrWait(ctx, link, TCP_HOOKS)
}

function dispatch(ctx: Context, link: Link, r: Route): void {
  ctx.table.acquire(r)
  const { client } = link
  const up = connect({ host: r.backend.host, port: r.backend.port, allowHalfOpen: true, noDelay: true })
  link.upstream = up
  let connected = false
  up.once('connect', () => {
    connected = true
    if (r.links !== undefined) r.links.add(client)
    client.pipe(up)
    up.pipe(client)
  })
  up.on('error', (err) => {
    if (connected || client.destroyed) return client.destroy()
    const code = (err as NodeJS.ErrnoException).code
    if (!isConnectError(code)) {
      ctx.log?.('upstream-error', { backend: r.backend.id, code })
      ctx.fail()
      return client.destroy()
    }
    ctx.table.eject(r, code ?? 'connect failed')
    ctx.log?.('failover', { backend: r.backend.id, code })
    if (link.tried === undefined) link.tried = []
    link.tried.push(r)
    // Retry once this socket is gone, so the route's in-flight count is already down.
    up.once('close', () => route(ctx, link))
  })
  up.on('close', (hadError) => {
    ctx.table.release(r)
    if (r.links !== undefined) r.links.delete(client)
    if (!connected || hadError || client.destroyed) return
    // The backend finished both directions: flush what it sent, then close the client.
    client.end(() => client.destroy())
  })
}
