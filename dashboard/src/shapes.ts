/**
 * The API's answers the dashboard reads, as one view each. Status, images, drift and events are the
 * CLI's `--json` shapes and are typed by the engine's own types; services, hotfixes and outdated
 * packages are read field by field, with the names the API may use, so a field added later is harmless
 * and a missing one shows as `-` instead of breaking the page.
 */

type Obj = Record<string, unknown>

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const str = (v: unknown): string | null =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)

/** The first of `keys` (a dotted path: `recycle.maxAge`) that `o` has a value for. */
function pick(o: Obj, ...keys: string[]): unknown {
  for (const k of keys) {
    let v: unknown = o
    for (const part of k.split('.')) v = isObj(v) ? v[part] : undefined
    if (v !== undefined && v !== null) return v
  }
  return undefined
}

/** The list in an answer that is a list, or an object holding one under one of `keys`. */
function listIn(raw: unknown, ...keys: string[]): unknown[] {
  if (Array.isArray(raw)) return raw
  if (isObj(raw)) for (const k of keys) if (Array.isArray(raw[k])) return raw[k] as unknown[]
  return []
}

/** An environment as /api/v1/environments lists it. */
export interface EnvironmentInfo {
  name: string
  provider: string | null
  services: string[]
}

/** /api/v1/environments as views. */
export function environmentsOf(raw: unknown): EnvironmentInfo[] {
  return listIn(raw, 'environments').flatMap((e) => {
    if (typeof e === 'string') return [{ name: e, provider: null, services: [] }]
    if (!isObj(e) || str(e.name) === null) return []
    const services = listIn(e.services).flatMap((s) => {
      const n = typeof s === 'string' ? s : isObj(s) ? str(s.name) : null
      return n === null ? [] : [n]
    })
    return [{ name: str(e.name) as string, provider: str(e.provider), services }]
  })
}

/** A service of an environment as the fleet page shows it. */
export interface ServiceInfo {
  name: string
  image: string | null
  replicas: number | null
  activeRelease: number | null
  /** recycle.maxAge in ms, or null when the service is never recycled by age */
  maxAgeMs: number | null
  driftPolicy: string | null
}

/** /api/v1/environments/{env}/services as views. */
export function servicesOf(raw: unknown): ServiceInfo[] {
  return listIn(raw, 'services').flatMap((s) => {
    if (!isObj(s) || str(s.name) === null) return []
    const active = pick(s, 'activeRelease', 'active.number', 'release.number', 'release', 'active')
    return [
      {
        name: str(s.name) as string,
        image: str(pick(s, 'image.name', 'image')),
        replicas: num(s.replicas),
        activeRelease: num(active),
        maxAgeMs: num(pick(s, 'recycle.maxAge', 'recycle.maxAgeMs', 'maxAge', 'maxAgeMs')),
        driftPolicy: str(pick(s, 'drift.policy', 'driftPolicy', 'drift')),
      },
    ]
  })
}

/** A hotfix as the hotfixes page shows it. */
export interface HotfixView {
  id: number | null
  instance: string
  environment: string | null
  service: string | null
  actor: string | null
  reason: string
  command: string[]
  createdAt: string | null
  expiresAt: string | null
  /** the files it changed, `C /etc/motd` */
  files: string[]
  /** its TTL has not ended (and, when the API says so, its instance still runs) */
  live: boolean
}

/** /api/v1/hotfixes as views, newest first. */
export function hotfixesOf(raw: unknown, now: number): HotfixView[] {
  const rows: Array<{ h: unknown; live?: boolean }> = []
  if (isObj(raw) && (Array.isArray(raw.live) || Array.isArray(raw.past))) {
    for (const h of listIn(raw.live)) rows.push({ h, live: true })
    for (const h of listIn(raw.past)) rows.push({ h, live: false })
  } else for (const h of listIn(raw, 'hotfixes')) rows.push({ h })
  const views = rows.flatMap(({ h, live }): HotfixView[] => {
    if (!isObj(h)) return []
    const expiresAt = str(pick(h, 'expiresAt', 'expires_at'))
    const expired = expiresAt !== null && Date.parse(expiresAt) <= now
    const said = typeof h.live === 'boolean' ? h.live : live
    const files = listIn(pick(h, 'files', 'changes')).flatMap((f) => {
      if (typeof f === 'string') return [f]
      if (!isObj(f) || str(f.path) === null) return []
      return [`${str(f.kind) ?? '?'} ${str(f.path)}`]
    })
    const command = listIn(h.command).flatMap((c) => (typeof c === 'string' ? [c] : []))
    return [
      {
        id: num(h.id),
        instance: str(h.instance) ?? '?',
        environment: str(pick(h, 'environment', 'env')),
        service: str(h.service),
        actor: str(h.actor),
        reason: str(h.reason) ?? '',
        command: command.length > 0 ? command : typeof h.command === 'string' ? [h.command] : [],
        createdAt: str(pick(h, 'createdAt', 'created_at')),
        expiresAt,
        files,
        live: (said ?? true) && !expired && h.status !== 'interrupted',
      },
    ]
  })
  return views.sort((a, b) => (b.id ?? 0) - (a.id ?? 0))
}

/** One package of an image with a newer version in the archive. */
export interface OutdatedRow {
  image: string
  package: string
  locked: string
  available: string
  security: boolean
}

/**
 * /api/v1/outdated as rows: a flat list of packages, or images each with their packages; the image is
 * `NAME vN` when the answer names a version.
 */
export function outdatedOf(raw: unknown): OutdatedRow[] {
  const out: OutdatedRow[] = []
  const row = (p: Obj, image: string | null): void => {
    const name = str(pick(p, 'package', 'name'))
    const available = str(pick(p, 'available', 'candidate', 'newer', 'availableVersion'))
    if (name === null || available === null) return
    out.push({
      image: image ?? imageName(p, false) ?? '-',
      package: name,
      locked: str(pick(p, 'locked', 'lockedVersion', 'current', 'installed', 'version')) ?? '-',
      available,
      security: pick(p, 'security') === true,
    })
  }
  for (const item of listIn(raw, 'outdated', 'packages', 'images')) {
    if (!isObj(item)) continue
    const inner = pick(item, 'packages', 'outdated')
    if (Array.isArray(inner)) {
      for (const p of inner) if (isObj(p)) row(p, imageName(item, true))
    } else row(item, null)
  }
  return out
}

/** `NAME vN` of an image entry (`nested`: it holds packages, so its `name` and `version` are the image's). */
function imageName(o: Obj, nested: boolean): string | null {
  const image = nested ? pick(o, 'image.name', 'image', 'name') : pick(o, 'image.name', 'image')
  const version = num(nested ? pick(o, 'image.version', 'version') : pick(o, 'image.version', 'imageVersion'))
  if (typeof image !== 'string') return null
  return version !== null && !image.includes(' v') && !image.includes('@') ? `${image} v${version}` : image
}
