import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { GrailHome } from '../home.js'
import type { FoundProxy } from '../proxy/supervisor.js'
import type { Ejection } from '../proxy/types.js'
import type { ServiceSpec } from '../spec/types.js'
import { listReleases } from '../state/index.js'
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
  /** pid of the daemon that serves now (up, restarted) or that was stopped */
  readonly pid?: number
  readonly detail: string
  /** backends the running proxy has taken out of rotation (failed its checks or requests), with why */
  readonly ejected?: Ejection[]
}

/** Where a service's proxy keeps its pid, control socket and routes. */
export function proxyDir(home: GrailHome, environment: string, service: string): string {
  return join(home.root, 'proxy', `${environment}-${service}`)
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
  const reports: ProxyReport[] = []
  const releases = listReleases(a.db, a.environment)
  for (const svc of Object.values(a.project.environments[a.environment]?.services ?? {})) {
    if (!svc.publish) continue
    const dir = proxyDir(a.home, a.environment, svc.name)
    const active = releases.find((r) => r.service === svc.name && r.status === 'active')
    // after `down` (its directory gone, no instance left) nothing should run
    const serving = active === undefined ? [] : await servingOf(a, svc, active.number)
    if (!existsSync(dir) && serving.length === 0) continue
    const base = { environment: a.environment, service: svc.name, listen: listenOf(svc) }
    const health = await proxyHealth(dir)
    if (health.state === 'up') {
      const { ejected } = health
      const out =
        ejected.length === 0
          ? ''
          : `, ${ejected.length} out of rotation: ${ejected.map((e) => `${e.id} (${e.reason} since ${e.since})`).join(', ')}`
      reports.push({
        ...base,
        state: 'up',
        pid: health.pid,
        detail: `${health.backends} backend(s)${out}`,
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
  return stopWhere(
    a.home,
    environments,
    (owner, p) => {
      if (owner === undefined || !environments.includes(owner.environment)) return true
      return owner.environment === a.environment && !published.has(p.name)
    },
    'no published service needs it',
  )
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
  return stopWhere(home, known, (owner) => owner?.environment === environment, 'grail down', opts.onError)
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

function listenOf(svc: ServiceSpec): string {
  const p = svc.publish as { host: string; port: number }
  return p.host.includes(':') ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`
}
