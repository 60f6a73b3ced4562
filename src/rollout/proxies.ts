import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { GrailHome } from '../home.js'
import type { FoundProxy } from '../proxy/supervisor.js'
import type { Ejection } from '../proxy/types.js'
import type { ServiceSpec } from '../spec/types.js'
import { listReleases } from '../state/index.js'
import { dataPlaneKind } from '../proxy/dataplane.js'
import type { RouteHealth } from '../proxy/haproxy/index.js'
import { servingOf } from './execute.js'
import { backendsOf } from './instances.js'
import type { ExecEnv } from './types.js'

/** What Grail found, or did, about one proxy. */
export interface ProxyReport {
  readonly environment: string
  readonly service: string
  /** `host:port` it listens on (as the spec publishes it, or as the running daemon reports) */
  readonly listen: string
  /** `up`: serving under its keeper; `restarted`: it was down and runs again; `down`: it could not be
   * restarted; `stopped`: no service needs it any more */
  readonly state: 'up' | 'restarted' | 'down' | 'stopped'
  /** pid of the process that serves now (up, restarted) or that was stopped: HAProxy, or the builtin daemon */
  readonly pid?: number
  /** pid of the process that restarts it when it dies */
  readonly keeper?: number
  readonly detail: string
  /** backends the running proxy has taken out of rotation (failed its checks or requests), with why */
  readonly ejected?: Ejection[]
}

/** Where a service's proxy keeps its pid, control socket and routes. */
export function proxyDir(home: GrailHome, environment: string, service: string): string {
  return join(home.root, 'proxy', `${environment}-${service}`)
}

/** Where the HAProxy data plane of a project keeps its routes, configuration, sockets and logs. */
export function dataPlaneDir(home: GrailHome): string {
  return join(home.root, 'dataplane')
}

/** Where every proxy of a project keeps its directory. */
export function proxiesRoot(home: GrailHome): string {
  return join(home.root, 'proxy')
}

/**
 * Notices a dead proxy and starts it again: every published service of the environment whose proxy
 * should run (it has a directory, or healthy instances of its active release) is probed; a daemon that does
 * not answer, or whose keeper is gone, is restarted with its persisted routes (or, when those are gone
 * too, with the healthy instances of the active release). Run by status, plan, apply and drift, so
 * whatever command comes first brings the proxy back.
 */
export async function superviseProxies(a: ExecEnv): Promise<ProxyReport[]> {
  const { proxyHealth, proxyStatus } = await import('../proxy/supervisor.js')
  const haproxy = dataPlaneKind() === 'haproxy'
  const { listRoutes, routeHealth } = await import('../proxy/haproxy/index.js')
  const routes = haproxy ? await listRoutes(dataPlaneDir(a.home)) : []
  // one HAProxy serves every route: probe them all before restarting it for one of them
  const healths = new Map<string, RouteHealth>()
  for (const r of routes) {
    if (r.environment === a.environment)
      healths.set(r.service, await routeHealth(dataPlaneDir(a.home), r.environment, r.service))
  }
  const reports: ProxyReport[] = []
  const releases = listReleases(a.db, a.environment)
  for (const svc of Object.values(a.project.environments[a.environment]?.services ?? {})) {
    if (!svc.publish) continue
    const dir = proxyDir(a.home, a.environment, svc.name)
    const active = releases.find((r) => r.service === svc.name && r.status === 'active')
    // after `down` (its directory gone, no instance left) nothing should run
    const serving = active === undefined ? [] : await servingOf(a, svc, active.number)
    if (haproxy) {
      const route = routes.find((r) => r.environment === a.environment && r.service === svc.name)
      if (route === undefined && serving.length === 0) continue
      reports.push(await superviseRoute(a, svc, route?.servers.length ?? 0, serving, healths.get(svc.name)))
      continue
    }
    if (!existsSync(dir) && serving.length === 0) continue
    const base = { environment: a.environment, service: svc.name, listen: listenOf(svc) }
    const health = await proxyHealth(dir)
    if (health.state === 'up') {
      const { ejected } = health
      reports.push({
        ...base,
        state: 'up',
        pid: health.pid,
        detail: upDetail(health.backends, ejected),
        ...(ejected.length > 0 ? { ejected } : {}),
      })
      continue
    }
    const was =
      health.state === 'unsupervised'
        ? `its keeper was gone (daemon pid ${health.pid} unsupervised)`
        : `it was down${health.pid === undefined ? '' : ` (daemon pid ${health.pid} gone)`}`
    try {
      const router = await a.routerFor(svc)
      if (router === null) continue
      const restored = await proxyStatus(dir)
      if (restored?.backends.length === 0) {
        // the routes file went with the daemon: route to the healthy instances state knows
        const backends = backendsOf(serving)
        if (backends.length > 0) await router.setBackends(backends)
      }
      const now = await proxyStatus(dir)
      reports.push({
        ...base,
        state: 'restarted',
        ...(now === undefined ? {} : { pid: now.pid }),
        detail: `${was}; restarted with ${now?.backends.length ?? 0} backend(s)`,
      })
    } catch (err) {
      reports.push({ ...base, state: 'down', detail: `${was}; restart failed: ${(err as Error).message}` })
    }
  }
  return reports
}

/** `superviseProxies` for one route of the HAProxy data plane. */
async function superviseRoute(
  a: ExecEnv,
  svc: ServiceSpec,
  servers: number,
  serving: Awaited<ReturnType<typeof servingOf>>,
  probed: RouteHealth | undefined,
): Promise<ProxyReport> {
  const base = { environment: a.environment, service: svc.name, listen: listenOf(svc) }
  const { routeHealth } = await import('../proxy/haproxy/index.js')
  const dir = dataPlaneDir(a.home)
  const health = probed ?? (await routeHealth(dir, a.environment, svc.name))
  if (health.state === 'up') {
    const { ejected } = health
    return {
      ...base,
      state: 'up',
      pid: health.pid,
      ...(health.keeper === undefined ? {} : { keeper: health.keeper }),
      detail: upDetail(health.backends, ejected),
      ...(ejected.length > 0 ? { ejected } : {}),
    }
  }
  const was =
    health.state === 'unsupervised'
      ? `its keeper was gone (HAProxy pid ${health.pid} unsupervised)`
      : `it was down${health.pid === undefined ? '' : ` (HAProxy pid ${health.pid} gone)`}${health.state === 'down' && health.reason !== undefined ? `: ${health.reason}` : ''}`
  try {
    const router = await a.routerFor(svc)
    if (router === null) return { ...base, state: 'down', detail: `${was}; the service is not published` }
    // the routes file went with the data plane: route to the healthy instances state knows
    if (servers === 0 && serving.length > 0) await router.setBackends(backendsOf(serving))
    const now = await routeHealth(dir, a.environment, svc.name)
    const backends = now.state === 'down' ? 0 : now.backends
    return {
      ...base,
      state: 'restarted',
      ...(now.pid === undefined ? {} : { pid: now.pid }),
      ...(now.state !== 'down' && now.keeper !== undefined ? { keeper: now.keeper } : {}),
      detail: `${was}; restarted with ${backends} backend(s)`,
    }
  } catch (err) {
    return { ...base, state: 'down', detail: `${was}; restart failed: ${(err as Error).message}` }
  }
}

/**
 * Stops the proxies of the environment that no published service of the spec needs (a service renamed,
 * removed or no longer published), and those of environments the spec no longer has. Found on disk, not
 * from the spec, so nothing is left answering on an old port. Run by apply before it starts any proxy, so
 * a renamed service can take over its predecessor's port.
 */
export async function stopUnneededProxies(a: ExecEnv): Promise<ProxyReport[]> {
  const environments = Object.keys(a.project.environments)
  const published = new Set(
    Object.values(a.project.environments[a.environment]?.services ?? {})
      .filter((s) => s.publish)
      .map((s) => `${a.environment}-${s.name}`),
  )
  const haproxy = dataPlaneKind() === 'haproxy'
  const builtin = await stopWhere(
    a.home,
    environments,
    (owner, p) => {
      if (owner === undefined || !environments.includes(owner.environment)) return true
      // HAProxy serves this environment now: its builtin daemons give the ports back
      if (haproxy && owner.environment === a.environment) return true
      return owner.environment === a.environment && !published.has(p.name)
    },
    haproxy ? 'HAProxy serves the environment now' : 'no published service needs it',
  )
  const routes = await stopRoutesWhere(a.home, (r) => {
    if (!environments.includes(r.environment)) return true
    if (!haproxy && r.environment === a.environment) return true
    return r.environment === a.environment && !published.has(`${r.environment}-${r.service}`)
  })
  return [...builtin, ...routes]
}

/** Stops the routes of the HAProxy data plane that `select` picks (the data plane stops with its last route). */
async function stopRoutesWhere(
  home: GrailHome,
  select: (r: { environment: string; service: string }) => boolean,
  onError?: (what: string, err: unknown) => void,
): Promise<ProxyReport[]> {
  const dir = dataPlaneDir(home)
  if (!existsSync(dir)) return []
  const { listRoutes, stopRoute } = await import('../proxy/haproxy/index.js')
  const reports: ProxyReport[] = []
  for (const r of await listRoutes(dir)) {
    if (!select(r)) continue
    let pid: number | undefined
    try {
      ;({ pid } = await stopRoute(dir, r.environment, r.service))
    } catch (err) {
      if (onError === undefined) throw err
      onError(`route ${r.environment}-${r.service}`, err)
      continue
    }
    reports.push({
      environment: r.environment,
      service: r.service,
      listen: `${r.listen.host}:${r.listen.port}`,
      state: 'stopped',
      ...(pid === undefined ? {} : { pid }),
      detail: 'no published service needs it',
    })
  }
  return reports
}

/**
 * `grail down`: stops every proxy of the environment found on disk, whatever the spec says now (a
 * service renamed since its last apply keeps its old proxy until this). `environments` only tells apart
 * the owners of directories made before owner files existed; a proxy that cannot be stopped is passed
 * to `onError` and the others are still stopped.
 */
export async function stopEnvironmentProxies(
  home: GrailHome,
  environment: string,
  environments: readonly string[],
  opts: { onError?: (what: string, err: unknown) => void } = {},
): Promise<ProxyReport[]> {
  const known = environments.includes(environment) ? environments : [...environments, environment]
  const builtin = await stopWhere(
    home,
    known,
    (owner) => owner?.environment === environment,
    'grail down',
    opts.onError,
  )
  const routes = await stopRoutesWhere(home, (r) => r.environment === environment, opts.onError)
  return [...builtin, ...routes.map((r) => ({ ...r, detail: 'grail down' }))]
}

async function stopWhere(
  home: GrailHome,
  environments: readonly string[],
  select: (owner: { environment: string; service: string } | undefined, p: FoundProxy) => boolean,
  why: string,
  onError?: (what: string, err: unknown) => void,
): Promise<ProxyReport[]> {
  const { listProxies, stopProxy, proxyStatus } = await import('../proxy/supervisor.js')
  const reports: ProxyReport[] = []
  for (const p of await listProxies(proxiesRoot(home))) {
    const owner = ownerOf(p, environments)
    if (!select(owner, p)) continue
    const s = await proxyStatus(p.dir)
    const listen = s === undefined ? '-' : `${s.listen.host}:${s.listen.port}`
    let pid: number | undefined
    try {
      ;({ pid } = await stopProxy(p.dir))
    } catch (err) {
      if (onError === undefined) throw err
      onError(`proxy ${p.name}`, err)
      continue
    }
    reports.push({
      environment: owner?.environment ?? '?',
      service: owner?.service ?? p.name,
      listen,
      state: 'stopped',
      ...(pid === undefined ? {} : { pid }),
      detail: why,
    })
  }
  return reports
}

/**
 * The environment and service a proxy directory belongs to: from its owner file, or for a directory
 * made before owner files existed, from its name `<env>-<service>` with the longest environment that fits.
 */
function ownerOf(
  p: FoundProxy,
  environments: readonly string[],
): { environment: string; service: string } | undefined {
  const { environment, service } = p.owner ?? {}
  if (environment !== undefined && service !== undefined) return { environment, service }
  const env = environments.filter((e) => p.name.startsWith(`${e}-`)).sort((x, y) => y.length - x.length)[0]
  return env === undefined ? undefined : { environment: env, service: p.name.slice(env.length + 1) }
}

/** A running proxy's line: its backends, and those out of rotation with why. */
function upDetail(backends: number, ejected: readonly Ejection[]): string {
  const out =
    ejected.length === 0
      ? ''
      : `, ${ejected.length} out of rotation: ${ejected.map((e) => `${e.id} (${e.reason} since ${e.since})`).join(', ')}`
  return `${backends} backend(s)${out}`
}

function listenOf(svc: ServiceSpec): string {
  const p = svc.publish as { host: string; port: number }
  return p.host.includes(':') ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`
}
