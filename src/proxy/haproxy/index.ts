import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import { createHash } from 'node:crypto'
import { closeSync, openSync } from 'node:fs'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { GrailError, isErrno } from '../../errors.js'
import { findHaproxy } from '../dataplane.js'
import { writeAtomic } from '../../util/write-atomic.js'
import { isAlive, signal, waitForExit } from '../process.js'
import type { Backend, Ejection, SwapResult } from '../types.js'
import { renderConfig, serverArgs } from './config.js'
import {
  type DataPlaneFiles,
  dataPlaneFiles,
  type KeeperState,
  type RouteCheck,
  type RouteEntry,
  type RouteServer,
  type RoutesFile,
  type ServerCheck,
  checkMap,
  routeKey,
} from './files.js'
import { isHaproxyOf } from './keeper.js'
import { adminCommand, parseInfoPid, parseServerStats, type ServerStat } from './runtime-api.js'

export { dataPlaneFiles, routeKey } from './files.js'
export type { RouteCheck } from './files.js'

/** A published service as the data plane should serve it. */
export interface RouteOptions {
  readonly environment: string
  readonly service: string
  readonly listenHost: string
  readonly listenPort: number
  readonly mode: 'http' | 'tcp'
  readonly drainTimeoutMs?: number
  readonly responseTimeoutMs?: number
  /** how a new route checks its servers (see `RouteEntry.check`); an existing route keeps its own */
  readonly check?: RouteCheck
  /** terminate TLS with this certificate chain and key (PEM files) */
  readonly tls?: { readonly certificate: string; readonly key: string }
  readonly accessLog?: boolean
}

/** Routes traffic of one published service. */
export interface RouteClient {
  /** pid of the HAProxy that serves now */
  readonly pid: number
  /** Swaps the route's servers without a reload; resolves once the removed ones are drained. */
  setBackends(backends: readonly Backend[]): Promise<SwapResult>
}

/** How one route is doing, as `status` reports it. */
export type RouteHealth =
  | {
      readonly state: 'up' | 'unsupervised'
      readonly pid: number
      readonly keeper?: number
      readonly backends: number
      readonly ejected: Ejection[]
    }
  | { readonly state: 'down'; readonly pid?: number; readonly reason?: string }

const run = promisify(execFile)
const DEFAULT_DRAIN_TIMEOUT_MS = 30_000
const DEFAULT_RESPONSE_TIMEOUT_MS = 30_000
const START_TIMEOUT_MS = 15_000
const LOCK_TIMEOUT_MS = 30_000
const DRAIN_POLL_MS = 100

/**
 * Returns a client for the route of `opts` in the data plane of `dir`, starting the data plane when it
 * does not run and reloading it when the route is new or its frontend changed (a new port, TLS, access
 * log). A route whose servers only change never reloads. Rejects with PROXY_PORT_IN_USE when another
 * process holds the port (the route is then removed again).
 */
export async function ensureRoute(dir: string, opts: RouteOptions): Promise<RouteClient> {
  if (!(Number.isInteger(opts.listenPort) && opts.listenPort >= 1 && opts.listenPort <= 65535)) {
    throw new GrailError('PROXY_PORT', `the proxy port must be 1..65535, got ${opts.listenPort}`)
  }
  // the address goes into HAProxy's configuration: an IP address or a host name, nothing else
  if (!/^[A-Za-z0-9][A-Za-z0-9.:-]*$/.test(opts.listenHost) || opts.listenHost.length > 253) {
    throw new GrailError('PROXY_LISTEN', `not an address to listen on: ${JSON.stringify(opts.listenHost)}`, {
      hint: `give services.${opts.service}.publish.host an IP address or a host name, e.g. 127.0.0.1`,
    })
  }
  const files = dataPlaneFiles(dir)
  const key = routeKey(opts.environment, opts.service)
  await mkdir(files.dir, { recursive: true, mode: 0o700 })
  const generation = await withLock(files, async () => {
    const routes = await readRoutes(files)
    const old = routes.routes[key]
    // the certificate is staged beside its place and moves there only once HAProxy accepted it
    const staged = opts.tls === undefined ? undefined : await writePem(files, key, opts.tls)
    const tls = staged === undefined ? undefined : { pem: join(files.tlsDir, `${key}.pem`) }
    const entry: RouteEntry = {
      environment: opts.environment,
      service: opts.service,
      listen: { host: opts.listenHost, port: opts.listenPort },
      mode: opts.mode,
      drainTimeoutMs: opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
      responseTimeoutMs: opts.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS,
      accessLog: opts.accessLog ?? false,
      ...(tls === undefined ? {} : { tls }),
      // a route's check changes with the servers it gets (setBackends), never here: a new health check in
      // the spec must not change how the instances still serving are checked
      ...((old?.check ?? opts.check) === undefined ? {} : { check: old?.check ?? opts.check }),
      servers: old?.servers ?? [],
    }
    const digest = staged === undefined ? undefined : await pemDigest(staged)
    const pemChanged = digest !== undefined && old?.tls !== undefined && digest !== old.tlsDigest
    const same = old !== undefined && !pemChanged && frontendOf(old) === frontendOf(entry)
    const gen = same ? routes.generation : routes.generation + 1
    const withDigest = digest === undefined ? entry : { ...entry, tlsDigest: digest }
    if (!same) {
      const next = { ...routes, generation: gen, routes: { ...routes.routes, [key]: withDigest } }
      // HAProxy must accept it before it is saved: a restart from routes it refuses would serve nothing
      const checked =
        staged === undefined
          ? next
          : { ...next, routes: { ...next.routes, [key]: { ...withDigest, tls: { pem: staged } } } }
      await checkConfig(files, checked, opts).catch(async (err: unknown) => {
        if (staged !== undefined) await rm(staged, { force: true })
        throw err
      })
    }
    if (staged !== undefined && tls !== undefined) await rename(staged, tls.pem)
    if (!same)
      await writeRoutes(files, {
        ...routes,
        generation: gen,
        routes: { ...routes.routes, [key]: withDigest },
      })
    return gen
  })
  const state = await ensureRunning(files, generation)
  const error = state.listenErrors[key]
  if (error !== undefined) {
    await removeRoute(files, key)
    if (error === 'EADDRINUSE') {
      throw new GrailError(
        'PROXY_PORT_IN_USE',
        `port ${opts.listenPort} on ${opts.listenHost} is already in use by another process; the proxy cannot listen on ${formatListen(opts.listenHost, opts.listenPort)}`,
        {
          hint: `find the owner with \`ss -ltnp 'sport = :${opts.listenPort}'\` and stop it, or give the service another public port`,
        },
      )
    }
    throw new GrailError(
      'PROXY_LISTEN',
      `the proxy cannot listen on ${formatListen(opts.listenHost, opts.listenPort)}: ${error}`,
      {
        hint: `see ${files.log}`,
      },
    )
  }
  return { pid: state.pid, setBackends: (backends) => setBackends(files, key, backends) }
}

/** The fields of a route that live in its frontend or backend section: a change of one needs a reload. */
function frontendOf(r: RouteEntry): string {
  const c = r.check
  const check =
    c === undefined ? null : c.type === 'http' ? [c.type, c.expectStatus, c.timeout] : [c.type, c.timeout]
  return JSON.stringify([
    r.listen,
    r.mode,
    r.drainTimeoutMs,
    r.responseTimeoutMs,
    r.accessLog,
    r.tls?.pem ?? null,
    check,
  ])
}

/**
 * Points the route at exactly `backends`: routes.json first (a HAProxy restarted from here on serves the
 * new set), then the runtime API: new servers are added (their HTTP check path in the route's map) and put
 * in rotation, removed ones drained (no new request; what they have in flight finishes) and deleted once
 * idle or at the drain timeout. Each server keeps the check it came with, so a rollout that mixes
 * instances launched under different health checks changes nothing for the old ones and needs no reload;
 * only when every server of the new set is checked another kind of way (TCP instead of HTTP, another
 * expected status) does HAProxy reload.
 */
async function setBackends(
  files: DataPlaneFiles,
  key: string,
  backends: readonly Backend[],
): Promise<SwapResult> {
  const { removed, drainTimeoutMs, sockets } = await withLock(files, async () => {
    const routes = await readRoutes(files)
    const entry = routes.routes[key]
    if (entry === undefined)
      throw new GrailError('PROXY_CONTROL', `the data plane has no route ${key} (it was stopped meanwhile)`)
    const servers: RouteServer[] = backends.map((b) => {
      // a server keeps the check it came with (see RouteServer)
      const check = entry.servers.find((s) => s.id === b.id)?.check ?? serverCheckOf(b)
      return { id: checkName(b.id), host: b.host, port: b.port, ...(check === undefined ? {} : { check }) }
    })
    const check = routeCheckFor(entry.check, servers)
    const next: RouteEntry = { ...entry, servers, ...(check === undefined ? {} : { check }) }
    if (check !== entry.check) {
      // the kind of check changed (every server now has the same, another one): a new HAProxy starts with
      // these servers, the old one finishes what it has
      const generation = routes.generation + 1
      await writeRoutes(files, { ...routes, generation, routes: { ...routes.routes, [key]: next } })
      await ensureRunning(files, generation)
      const gone = entry.servers.map((s) => s.id).filter((id) => !servers.some((s) => s.id === id))
      return { removed: gone, drainTimeoutMs: entry.drainTimeoutMs, sockets: [files.socket] }
    }
    await writeRoutes(files, { ...routes, routes: { ...routes.routes, [key]: next } })
    let gone: string[] = []
    for (let attempt = 1; ; attempt++) {
      await ensureRunning(files, routes.generation)
      try {
        gone = await applyServers(files, files.socket, key, entry, servers)
        break
      } catch (err) {
        // HAProxy died under the change: its keeper starts the next from routes.json, which has the
        // new servers already; apply again to the one that runs then
        const down = ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE'].some((c) => isErrno(err, c))
        if (!down || attempt >= 3) throw err
        await sleep(100)
      }
    }
    return { removed: gone, drainTimeoutMs: entry.drainTimeoutMs, sockets: [files.socket] }
  })
  const forced = await drain(sockets, key, removed, drainTimeoutMs)
  for (const id of removed) for (const socket of sockets) await deleteServer(socket, key, id)
  const map = checkMap(files, key)
  for (const id of removed) await adminCommand(files.socket, `del map ${map} ${id}`).catch(() => '')
  return { drained: removed, forced }
}

/**
 * Makes the HAProxy behind `socket` serve exactly `servers` on route `key`: adds what it lacks, fixes an
 * address that changed, puts them in rotation, drains the others. Resolves with the drained ids.
 */
async function applyServers(
  files: DataPlaneFiles,
  socket: string,
  key: string,
  entry: RouteEntry,
  servers: readonly RouteServer[],
): Promise<string[]> {
  const actual = parseServerStats(await adminCommand(socket, `show stat ${key} 4 -1`)).filter(
    (s) => s.backend === key,
  )
  const commands: string[] = []
  for (const s of servers) {
    const has = actual.find((a) => a.server === s.id)
    if (has === undefined) {
      if (entry.check?.type === 'http' && s.check?.type === 'http') {
        const map = checkMap(files, key)
        commands.push(`del map ${map} ${s.id}`, `add map ${map} ${s.id} ${s.check.path}`)
      }
      commands.push(`add server ${key}/${s.id} ${serverArgs(s, entry.check)}`)
      if (serverArgs(s, entry.check).includes(' check ')) commands.push(`enable health ${key}/${s.id}`)
    }
    // an instance recreated under the same id (a crashed rollout finished by the next apply) may have
    // another address
    else if (has.address !== `${s.host}:${s.port}`)
      commands.push(`set server ${key}/${s.id} addr ${s.host} port ${s.port}`)
    if (has === undefined || has.status !== 'UP') commands.push(`set server ${key}/${s.id} state ready`)
  }
  const gone = actual.filter((a) => !servers.some((s) => s.id === a.server)).map((a) => a.server)
  for (const id of gone) commands.push(`set server ${key}/${id} state drain`)
  for (const c of commands) {
    const answer = (await adminCommand(socket, c)).trim()
    // a map entry left by an earlier swap is cleared before it is set; none there is fine
    if (c.startsWith('del map ')) continue
    if (
      answer !== '' &&
      !/^New server registered|^IP changed from|^no need to change the addr/.test(answer)
    ) {
      throw new GrailError('PROXY_CONTROL', `HAProxy refused "${c}": ${answer}`, { hint: `see ${files.log}` })
    }
  }
  return gone
}

/** A backend's check as the data plane keeps it for its server. */
function serverCheckOf(b: Backend): ServerCheck | undefined {
  const c = b.check
  if (c === undefined) return undefined
  const base = { port: c.port, interval: c.interval, timeout: c.timeout }
  if (c.type === 'http') {
    if (!/^\/[\x21-\x7e]*$/.test(c.path))
      throw new GrailError('PROXY_CONTROL', `not a valid check path: ${JSON.stringify(c.path)}`)
    return { type: 'http', path: c.path, expectStatus: c.expectStatus, ...base }
  }
  return { type: 'tcp', ...base }
}

/**
 * The route's check after a swap to `servers`: unchanged, unless the route has none yet (then the first
 * checked server's), or every server is checked the same way and that is another way than the route's.
 */
function routeCheckFor(
  current: RouteCheck | undefined,
  servers: readonly RouteServer[],
): RouteCheck | undefined {
  const kinds = servers.map((s) => (s.check === undefined ? undefined : routeCheckOf(s.check)))
  const first = kinds.find((k) => k !== undefined)
  if (first === undefined) return current
  if (current === undefined) return first
  const same = (x: RouteCheck | undefined, y: RouteCheck): boolean =>
    x !== undefined &&
    x.type === y.type &&
    (x.type !== 'http' || (y.type === 'http' && x.expectStatus === y.expectStatus))
  if (same(current, first) || !kinds.every((k) => same(k, first))) return current
  return first
}

function routeCheckOf(c: ServerCheck): RouteCheck {
  return c.type === 'http'
    ? { type: 'http', expectStatus: c.expectStatus, timeout: c.timeout }
    : { type: 'tcp', timeout: c.timeout }
}

/**
 * Waits until every server of `ids` has no session left, or the timeout; returns those still busy then.
 * Their sessions are not cut here: the instance is stopped next (SIGTERM, then its grace), which lets an
 * application end what it has open its own way (a WebSocket close frame, a last response).
 */
async function drain(
  sockets: readonly string[],
  key: string,
  ids: readonly string[],
  timeoutMs: number,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs
  let busy = [...ids]
  while (busy.length > 0) {
    const stats = (await Promise.all(sockets.map((s) => serverStats(s, key)))).flat()
    busy = busy.filter((id) => stats.some((s) => s.server === id && s.current > 0))
    if (busy.length === 0 || Date.now() >= deadline) break
    await sleep(DRAIN_POLL_MS)
  }
  return busy
}

/** Takes a drained server out of HAProxy (retried: its idle connections may take a moment to close). */
async function deleteServer(socket: string, key: string, id: string): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const answer = await adminCommand(
      socket,
      `set server ${key}/${id} state maint; del server ${key}/${id}`,
    ).catch(() => 'No such server')
    if (/Server deleted|No such server/.test(answer)) return
    await sleep(100)
  }
  // left in maintenance: out of rotation, and gone at the next start of HAProxy (routes.json lacks it)
}

/**
 * What the data plane's own checks say now, for every route in one runtime-API call: the servers they
 * hold DOWN, by backend (`routeKey`); undefined when HAProxy does not answer. Cheap enough to call
 * every few seconds (a reconciler asks it what to look at).
 */
export async function serversDown(dir: string): Promise<Map<string, string[]> | undefined> {
  const csv = await adminCommand(dataPlaneFiles(dir).socket, 'show stat -1 4 -1', 1_000).catch(
    () => undefined,
  )
  if (csv === undefined) return undefined
  const down = new Map<string, string[]>()
  for (const s of parseServerStats(csv))
    if (s.status.startsWith('DOWN')) down.set(s.backend, [...(down.get(s.backend) ?? []), s.server])
  return down
}

async function serverStats(socket: string, key: string): Promise<ServerStat[]> {
  const csv = await adminCommand(socket, `show stat ${key} 4 -1`).catch(() => '')
  return parseServerStats(csv).filter((s) => s.backend === key)
}

/** Removes a route; stops the data plane when it was the last. Resolves with the HAProxy pid that served it. */
export async function stopRoute(
  dir: string,
  environment: string,
  service: string,
  opts: { graceMs?: number } = {},
): Promise<{ pid?: number }> {
  const files = dataPlaneFiles(dir)
  const state = await readState(files)
  const left = await removeRoute(files, routeKey(environment, service))
  if (left === 0) await stopDataPlane(dir, opts)
  return state?.pid === undefined ? {} : { pid: state.pid }
}

/** Removes `key` from the routes and reloads (when the data plane runs); resolves with the routes left. */
async function removeRoute(files: DataPlaneFiles, key: string): Promise<number> {
  const { generation, left } = await withLock(files, async () => {
    const routes = await readRoutes(files)
    const { [key]: gone, ...rest } = routes.routes
    if (gone === undefined) return { generation: undefined, left: Object.keys(rest).length }
    const generation = routes.generation + 1
    await writeRoutes(files, { ...routes, generation, routes: rest })
    await rm(join(files.tlsDir, `${key}.pem`), { force: true })
    return { generation, left: Object.keys(rest).length }
  })
  if (generation !== undefined && left > 0 && (await keeperPid(files)) !== undefined)
    await ensureRunning(files, generation)
  return left
}

/**
 * Stops the data plane of `dir`: the keeper tells HAProxy to stop listening and finish its connections;
 * the exact pids left after `graceMs` are killed; the directory is removed.
 */
export async function stopDataPlane(dir: string, opts: { graceMs?: number } = {}): Promise<void> {
  const files = dataPlaneFiles(dir)
  const graceMs = opts.graceMs ?? DEFAULT_DRAIN_TIMEOUT_MS + 5_000
  const keeper = await keeperPid(files)
  const state = await readState(files)
  const haproxies: number[] = []
  for (const pid of [state?.pid ?? 0, ...(state?.retiring ?? [])]) {
    if (pid > 0 && (await isHaproxyOf(pid, files))) haproxies.push(pid)
  }
  const deadline = Date.now() + graceMs
  if (keeper !== undefined) signal(keeper, 'SIGTERM')
  else for (const p of haproxies) signal(p, 'SIGUSR1')
  for (const p of [keeper, ...haproxies]) {
    if (p === undefined) continue
    if (await waitForExit(p, Math.max(0, deadline - Date.now()))) continue
    signal(p, 'SIGKILL')
    await waitForExit(p, 5_000)
  }
  await rm(files.dir, { recursive: true, force: true })
  await rm(files.socket, { force: true })
  // the private directory under /tmp of a data plane whose own path HAProxy cannot name
  const safe = dirname(files.mapDir)
  if (safe !== files.dir) await rm(safe, { recursive: true, force: true })
}

/** The routes the data plane of `dir` serves (from routes.json). */
export async function listRoutes(
  dir: string,
): Promise<
  Array<{ environment: string; service: string; listen: { host: string; port: number }; servers: Backend[] }>
> {
  const routes = await readRoutes(dataPlaneFiles(dir))
  return Object.values(routes.routes).map((r) => ({
    environment: r.environment,
    service: r.service,
    listen: r.listen,
    servers: r.servers.map((s) => ({ id: s.id, host: s.host, port: s.port })),
  }))
}

/**
 * Probes one route without starting anything: `up` (HAProxy answers and serves the route, under its
 * keeper), `unsupervised` (it serves, the keeper is gone) or `down`. A HAProxy its keeper is restarting
 * gets up to `waitMs` to answer.
 */
export async function routeHealth(
  dir: string,
  environment: string,
  service: string,
  waitMs = 10_000,
): Promise<RouteHealth> {
  const files = dataPlaneFiles(dir)
  const key = routeKey(environment, service)
  const keeper = await keeperPid(files)
  const deadline = Date.now() + waitMs
  let pid = await answeringPid(files)
  while (pid === undefined && keeper !== undefined && Date.now() < deadline && (await isAlive(keeper))) {
    await sleep(50)
    pid = await answeringPid(files)
  }
  const state = await readState(files)
  if (pid === undefined)
    return state?.pid === undefined ? { state: 'down' } : { state: 'down', pid: state.pid }
  const stats = await serverStats(files.socket, key)
  const routes = await readRoutes(files)
  const entry = routes.routes[key]
  if (entry === undefined) return { state: 'down', reason: 'the data plane has no such route' }
  const info = await adminCommand(files.socket, `show stat ${key} 2 -1`).catch(() => '')
  if (!info.includes(`${key},BACKEND`))
    return { state: 'down', pid, reason: 'HAProxy does not serve the route' }
  const now = Date.now()
  const ejected: Ejection[] = stats
    .filter((s) => s.status.startsWith('DOWN') && entry.servers.some((e) => e.id === s.server))
    .map((s) => ({
      id: s.server,
      reason: describeCheck(s),
      since: new Date(now - s.lastChange * 1000).toISOString(),
    }))
  const up = keeper !== undefined && (await isAlive(keeper))
  return {
    state: up ? 'up' : 'unsupervised',
    pid,
    ...(up ? { keeper } : {}),
    backends: entry.servers.length,
    ejected,
  }
}

function describeCheck(s: ServerStat): string {
  const code = s.checkCode === '' ? '' : ` ${s.checkCode}`
  if (s.checkStatus === 'L7STS') return `HTTP${code}`
  if (s.checkStatus === 'L4TOUT' || s.checkStatus === 'L7TOUT') return 'timed out'
  if (s.checkStatus === 'L4CON') return s.checkDescription === '' ? 'ECONNREFUSED' : s.checkDescription
  return s.checkDescription === '' ? s.checkStatus || 'down' : s.checkDescription
}

/** The pid HAProxy reports on its runtime API, or undefined when nothing answers. */
async function answeringPid(files: DataPlaneFiles): Promise<number | undefined> {
  return adminCommand(files.socket, 'show info', 2_000).then(parseInfoPid, () => undefined)
}

/**
 * Makes sure the keeper runs and its HAProxy has loaded routes generation `generation` (or later):
 * starts a keeper when none runs, or signals the running one to reload. Resolves with the keeper's state.
 */
async function ensureRunning(files: DataPlaneFiles, generation: number): Promise<KeeperState> {
  let keeper = await keeperPid(files)
  const before = await readState(files)
  if (keeper === undefined) keeper = await spawnKeeper(files)
  // behind: reload. A HAProxy that is not running is the keeper's to restart (it reads the routes then)
  else if (before !== undefined && before.generation < generation) {
    signal(keeper, 'SIGHUP')
  }
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    const state = await readState(files)
    if (
      state !== undefined &&
      state.keeper === keeper &&
      state.generation >= generation &&
      (await answeringPid(files)) === state.pid
    )
      return state
    if (!(await isAlive(keeper))) {
      throw new GrailError(
        'PROXY_START',
        `the data plane's keeper (pid ${keeper}) exited: ${await lastLines(files.log)}`,
        {
          hint: `see its log ${files.log}`,
        },
      )
    }
    if (Date.now() >= deadline) {
      throw new GrailError(
        'PROXY_START',
        `the data plane did not load its routes within ${START_TIMEOUT_MS} ms: ${await lastLines(files.log)}`,
        {
          hint: `see its log ${files.log}`,
        },
      )
    }
    await sleep(25)
  }
}

function keeperCommand(): string[] {
  const here = import.meta.url
  if (here.endsWith('.ts')) {
    return ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('./keeper-main.ts', here))]
  }
  return [fileURLToPath(new URL('./keeper-main.js', here))]
}

async function spawnKeeper(files: DataPlaneFiles): Promise<number> {
  const haproxy = findHaproxy()
  if (haproxy === undefined) {
    throw new GrailError('PROXY_START', 'HAProxy is not installed: the data plane needs it', {
      hint: 'install it (`apt-get install haproxy`), or set GRAIL_HAPROXY to its path',
    })
  }
  const logFd = openSync(files.log, 'a', 0o600)
  try {
    // detached: its own session, so the CLI's Ctrl-C or exit does not reach it; cwd '/' pins no directory
    const child = spawn(process.execPath, [...keeperCommand(), '--dir', files.dir, '--haproxy', haproxy], {
      detached: true,
      stdio: ['ignore', logFd, logFd],
      cwd: '/',
    })
    child.on('error', () => {})
    child.unref()
    if (child.pid === undefined) await sleep(0)
    if (child.pid === undefined) throw new GrailError('PROXY_START', 'could not start the data plane keeper')
    await writeAtomic(files.keeperPid, `${child.pid}\n`, { mode: 0o600 })
    return child.pid
  } finally {
    closeSync(logFd)
  }
}

/** The keeper's pid while it runs and is this directory's keeper (a pid file can outlive its process). */
async function keeperPid(files: DataPlaneFiles): Promise<number | undefined> {
  const text = await readFile(files.keeperPid, 'utf8').catch(() => '')
  const pid = Number(text.trim())
  if (!(Number.isInteger(pid) && pid > 0) || !(await isAlive(pid))) return undefined
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
  const args = cmdline.split('\0')
  const at = args.indexOf('--dir')
  return at >= 0 && args[at + 1] === files.dir ? pid : undefined
}

async function readState(files: DataPlaneFiles): Promise<KeeperState | undefined> {
  try {
    return JSON.parse(await readFile(files.state, 'utf8')) as KeeperState
  } catch (err) {
    if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return undefined
    throw err
  }
}

async function readRoutes(files: DataPlaneFiles): Promise<RoutesFile> {
  let text: string
  try {
    text = await readFile(files.routes, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { version: 1, generation: 0, routes: {} }
    throw err
  }
  try {
    const parsed = JSON.parse(text) as RoutesFile
    if (parsed.version !== 1 || typeof parsed.routes !== 'object') throw new Error('not a routes file')
    return parsed
  } catch (err) {
    throw new GrailError('PROXY_BAD_STATE', `${files.routes} is damaged: ${(err as Error).message}`, {
      hint: 'run `grail down` for each environment and `grail apply` again: the routes are rebuilt from the running instances',
    })
  }
}

async function writeRoutes(files: DataPlaneFiles, routes: RoutesFile): Promise<void> {
  await writeAtomic(files.routes, `${JSON.stringify(routes, null, 2)}\n`, { mode: 0o600 })
}

/**
 * Runs `haproxy -c` on the configuration `routes` would render; rejects with what HAProxy said (naming
 * the route's certificate when it has one) when it refuses it.
 */
async function checkConfig(files: DataPlaneFiles, routes: RoutesFile, opts: RouteOptions): Promise<void> {
  const haproxy = findHaproxy()
  if (haproxy === undefined) return
  const file = join(files.dir, 'haproxy.check.cfg')
  const emptyMap = join(files.dir, 'haproxy.check.map')
  await writeAtomic(emptyMap, '', { mode: 0o600, durable: false })
  await writeAtomic(
    file,
    renderConfig(routes, { socket: `${files.socket}.check`, fds: {}, forCheck: true, mapOf: () => emptyMap }),
    {
      mode: 0o600,
      durable: false,
    },
  )
  try {
    await run(haproxy, ['-c', '-q', '-f', file], { timeout: 15_000 })
  } catch (err) {
    const out = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`
    const alerts = out
      .split('\n')
      .filter((l) => l.includes('ALERT'))
      .map((l) => l.replace(/^\[ALERT\]\s*\(\d+\)\s*:\s*/, ''))
      .join('; ')
    const what = opts.tls === undefined ? '' : ` (certificate ${opts.tls.certificate}, key ${opts.tls.key})`
    throw new GrailError(
      opts.tls === undefined ? 'PROXY_START' : 'PROXY_TLS',
      `HAProxy refuses the route of ${opts.environment}/${opts.service}${what}: ${alerts || out.trim() || (err as Error).message}`,
      {
        hint:
          opts.tls === undefined
            ? `see ${files.log}`
            : 'check that the certificate and the key belong together and are valid PEM',
      },
    )
  } finally {
    await rm(file, { force: true })
    await rm(emptyMap, { force: true })
  }
}

/** Writes certificate chain and key, concatenated as HAProxy reads them, readable only by root. */
async function writePem(
  files: DataPlaneFiles,
  key: string,
  tls: { certificate: string; key: string },
): Promise<string> {
  const read = async (file: string, what: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8')
    } catch (err) {
      throw new GrailError('PROXY_TLS', `cannot read the TLS ${what} ${file}: ${(err as Error).message}`, {
        hint: `check publish.tls.${what === 'certificate' ? 'certificate' : 'key'} in grail.yaml`,
      })
    }
  }
  const cert = await read(tls.certificate, 'certificate')
  const keyPem = await read(tls.key, 'key')
  if (!cert.includes('-----BEGIN CERTIFICATE-----')) {
    throw new GrailError('PROXY_TLS', `${tls.certificate} holds no PEM certificate`, {
      hint: 'give the certificate chain in PEM form',
    })
  }
  if (!/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(keyPem)) {
    throw new GrailError('PROXY_TLS', `${tls.key} holds no PEM private key`, {
      hint: 'give the private key in PEM form',
    })
  }
  await mkdir(files.tlsDir, { recursive: true, mode: 0o700 })
  const pem = join(files.tlsDir, `${key}.pem.new`)
  await writeAtomic(pem, `${cert.trimEnd()}\n${keyPem.trimEnd()}\n`, { mode: 0o600 })
  return pem
}

async function pemDigest(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex')
}

/** Server names are instance ids (validated by the provider); refuse anything else reaching the runtime API. */
function checkName(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id))
    throw new GrailError('PROXY_CONTROL', `not a valid backend id: ${JSON.stringify(id)}`)
  return id
}

function formatListen(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/**
 * Runs `fn` holding the data plane's lock (an exclusive file naming its holder's pid; a lock whose
 * holder died is taken over), so that two commands changing routes at once do not lose a change.
 */
async function withLock<T>(files: DataPlaneFiles, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS
  for (;;) {
    try {
      const fh = await open(files.lock, 'wx', 0o600)
      await fh.writeFile(`${process.pid}\n`)
      await fh.close()
      break
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err
    }
    const holder = Number((await readFile(files.lock, 'utf8').catch(() => '')).trim())
    if (Number.isInteger(holder) && holder > 0 && !(await isAlive(holder))) {
      await rm(files.lock, { force: true })
      continue
    }
    if (Date.now() >= deadline) {
      throw new GrailError(
        'PROXY_CONTROL',
        `the data plane's routes are locked by pid ${holder} for more than ${LOCK_TIMEOUT_MS} ms`,
        {
          hint: `if no grail command runs, remove ${files.lock}`,
        },
      )
    }
    await sleep(20)
  }
  try {
    return await fn()
  } finally {
    await rm(files.lock, { force: true })
  }
}

async function lastLines(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text.trim().split('\n').slice(-3).join(' | ') || 'no log'
}
