import { createHash } from 'node:crypto'
import { join, resolve } from 'node:path'

/** One published service as the HAProxy data plane serves it: a frontend and its backend. */
export interface RouteEntry {
  readonly environment: string
  readonly service: string
  readonly listen: { readonly host: string; readonly port: number }
  readonly mode: 'http' | 'tcp'
  /** how long a removed server may finish what it has in flight */
  readonly drainTimeoutMs: number
  /** how long a request may wait for a response header before it is retried elsewhere (idempotent) or answered 504 */
  readonly responseTimeoutMs: number
  /**
   * The active check of every server of the route, from the service's declared health check (an exec
   * check becomes a TCP connect); without one, a TCP connect every 2 s. A server's own check port (a
   * check on another port of the instance) comes with the server.
   */
  readonly check?: RouteCheck
  /** TLS termination: the PEM (certificate chain then key) Grail keeps in the data plane's directory */
  readonly tls?: { readonly pem: string }
  /** sha256 of the PEM when it was written: a renewed certificate reloads */
  readonly tlsDigest?: string
  /** write one JSON line per request to the access log */
  readonly accessLog: boolean
  /** the servers in rotation (what the last route change asked for); a restart starts with these */
  readonly servers: ReadonlyArray<RouteServer>
}

/** The section-level part of a route's health check: the same for every server of the route. */
export type RouteCheck = { readonly interval: number; readonly timeout: number } & (
  | { readonly type: 'http'; readonly path: string; readonly expectStatus: number }
  | { readonly type: 'tcp' }
)

/** One server of a route: an instance, and the port its check probes when not the traffic port. */
export interface RouteServer {
  readonly id: string
  readonly host: string
  readonly port: number
  readonly checkPort?: number
}

/**
 * The data plane's routes: the source of truth from which the keeper renders HAProxy's configuration at
 * every start and reload. Written (atomically) before every runtime change, so a HAProxy restarted at any
 * moment serves what the last change asked for. `generation` grows with every change that needs a
 * reload (a frontend added, removed or changed); the keeper reports the generation it loaded.
 */
export interface RoutesFile {
  readonly version: 1
  readonly generation: number
  readonly routes: Readonly<Record<string, RouteEntry>>
}

/** What the keeper reports in `state.json` after each (re)start of HAProxy. */
export interface KeeperState {
  readonly keeper: number
  /** pid of the HAProxy process that serves now */
  readonly pid: number
  /** HAProxy processes a reload replaced, finishing their connections (at the time of writing) */
  readonly retiring: readonly number[]
  /** the routes generation that HAProxy loaded */
  readonly generation: number
  /** per route key, why its port could not be bound (EADDRINUSE, EACCES…) */
  readonly listenErrors: Readonly<Record<string, string>>
  readonly since: string
}

/** The files of the data plane directory (`.grail/dataplane`). */
export interface DataPlaneFiles {
  readonly dir: string
  readonly routes: string
  readonly config: string
  /** HAProxy's runtime API (admin level, mode 0600) */
  readonly socket: string
  readonly keeperPid: string
  readonly state: string
  readonly log: string
  readonly accessLog: string
  readonly lock: string
  readonly tlsDir: string
}

/** sun_path holds 108 bytes on Linux; stay well under. */
const MAX_SOCKET_PATH = 100

export function dataPlaneFiles(dir: string): DataPlaneFiles {
  const abs = resolve(dir)
  const inDir = join(abs, 'admin.sock')
  const socket =
    Buffer.byteLength(inDir) < MAX_SOCKET_PATH
      ? inDir
      : `/tmp/grail-dataplane-${createHash('sha256').update(abs).digest('hex').slice(0, 20)}.sock`
  return {
    dir: abs,
    routes: join(abs, 'routes.json'),
    config: join(abs, 'haproxy.cfg'),
    socket,
    keeperPid: join(abs, 'keeper.pid'),
    state: join(abs, 'state.json'),
    log: join(abs, 'haproxy.log'),
    accessLog: join(abs, 'access.log'),
    lock: join(abs, 'routes.lock'),
    tlsDir: join(abs, 'tls'),
  }
}

/** The key of a route: its backend's name in HAProxy. Names are `[a-z0-9-]`, so the dot cannot collide. */
export function routeKey(environment: string, service: string): string {
  return `${environment}.${service}`
}
