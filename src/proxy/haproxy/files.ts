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
   * How the servers of the route are checked: the kind of check (HTTP or TCP connect), the status an HTTP
   * check expects and the check timeout live in the backend section; each server's path, port and
   * interval are its own (see `RouteServer.check`). Without one, TCP connects every 2 s.
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
export type RouteCheck = { readonly timeout: number } & (
  | { readonly type: 'http'; readonly expectStatus: number }
  | { readonly type: 'tcp' }
)

/**
 * One server of a route: an instance, and the check it was put in rotation with. A server keeps its
 * check for as long as it is in the route (later swaps that list it again do not change it), so an
 * instance launched under a new health check and one of the release before are each checked by their own.
 */
export interface RouteServer {
  readonly id: string
  readonly host: string
  readonly port: number
  readonly check?: ServerCheck
}

/** A server's own check: on `port` every `interval` ms; an HTTP check GETs `path` (through the route's map). */
export type ServerCheck = { readonly port: number; readonly interval: number; readonly timeout: number } & (
  | { readonly type: 'http'; readonly path: string; readonly expectStatus: number }
  | { readonly type: 'tcp' }
)

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
  /** where each route's check map lives (`<key>.map`: server id → HTTP check path) */
  readonly mapDir: string
}

/** sun_path holds 108 bytes on Linux; stay well under. */
const MAX_SOCKET_PATH = 100

/** Paths HAProxy's configuration may hold as they are (no space, quote, comma or parenthesis). */
const SAFE_PATH = /^[A-Za-z0-9/._+-]+$/

export function dataPlaneFiles(dir: string): DataPlaneFiles {
  const abs = resolve(dir)
  const hash = createHash('sha256').update(abs).digest('hex').slice(0, 20)
  // what HAProxy's configuration names lives under a path it can hold: the directory itself when it is
  // plain, else a private directory under /tmp (re-created at each start: its content comes from routes.json)
  const safe = SAFE_PATH.test(abs) ? abs : `/tmp/grail-dataplane-${hash}`
  const inDir = join(safe, 'admin.sock')
  const socket = Buffer.byteLength(inDir) < MAX_SOCKET_PATH ? inDir : `/tmp/grail-dataplane-${hash}.sock`
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
    tlsDir: join(safe, 'tls'),
    mapDir: join(safe, 'checks'),
  }
}

/** The check map of route `key`. */
export function checkMap(files: DataPlaneFiles, key: string): string {
  return join(files.mapDir, `${key}.map`)
}

/** The key of a route: its backend's name in HAProxy. Names are `[a-z0-9-]`, so the dot cannot collide. */
export function routeKey(environment: string, service: string): string {
  return `${environment}.${service}`
}
