import { GrailError } from '../errors.js'
import type { Backend, BackendCheck, Ejection, ProxyStats } from './types.js'

/** What `GET /status` on a proxy daemon's control socket answers. */
export interface ProxyStatus {
  readonly pid: number
  /** The address the daemon was asked to listen on (`--listen`). */
  readonly listen: { readonly host: string; readonly port: number }
  readonly mode: 'http' | 'tcp'
  readonly backends: Backend[]
  /** The backends of the set the proxy has taken out of rotation (absent from daemons of older Grails). */
  readonly ejected?: Ejection[]
  readonly stats: ProxyStats
  /** Pid of the keeper that restarts this daemon when it dies; null when it runs unsupervised. */
  readonly supervisor: number | null
}

/** The daemon's command line, parsed. */
export interface DaemonArgs {
  readonly control: string
  readonly listenHost: string
  readonly listenPort: number
  readonly mode: 'http' | 'tcp'
  readonly state: string
  readonly log: string | undefined
  readonly drainTimeoutMs: number | undefined
  /** Restarted by its keeper: listen on the socket the keeper passes over IPC instead of binding. */
  readonly inheritListen: boolean
}

/** Exit codes of the daemon, read by the supervisor when it dies before its control socket answers. */
export const DaemonExit = {
  ok: 0,
  internal: 1,
  usage: 2,
  portInUse: 3,
  listenFailed: 4,
  controlInUse: 5,
  badState: 6,
} as const

/** Builds the daemon argv (without the node executable and entry) from its options: the inverse of `parseDaemonArgs`. */
export function daemonArgv(args: DaemonArgs): string[] {
  const argv = [
    '--control',
    args.control,
    '--listen',
    formatListen(args.listenHost, args.listenPort),
    '--mode',
    args.mode,
    '--state',
    args.state,
  ]
  if (args.log !== undefined) argv.push('--log', args.log)
  if (args.drainTimeoutMs !== undefined) argv.push('--drain-timeout', String(args.drainTimeoutMs))
  if (args.inheritListen) argv.push('--inherit-listen', 'ipc')
  return argv
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatListen(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/**
 * Parses `--control S --listen H:P --mode http|tcp --state F [--log F] [--drain-timeout MS]
 * [--inherit-listen ipc]`.
 */
export function parseDaemonArgs(argv: readonly string[]): DaemonArgs {
  const values = new Map<string, string>()
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i] ?? ''
    const value = argv[i + 1]
    if (!flag.startsWith('--') || value === undefined) usage(`expected --flag value, got "${flag}"`)
    values.set(flag.slice(2), value)
  }
  const known = new Set(['control', 'listen', 'mode', 'state', 'log', 'drain-timeout', 'inherit-listen'])
  for (const k of values.keys()) if (!known.has(k)) usage(`unknown flag --${k}`)
  const need = (k: string): string => values.get(k) ?? usage(`--${k} is required`)
  const mode = need('mode')
  if (mode !== 'http' && mode !== 'tcp') usage(`--mode must be http or tcp, got "${mode}"`)
  const { host, port } = parseListen(need('listen'))
  const drain = values.get('drain-timeout')
  const drainTimeoutMs = drain === undefined ? undefined : Number(drain)
  if (drainTimeoutMs !== undefined && !(Number.isInteger(drainTimeoutMs) && drainTimeoutMs >= 0)) {
    usage(`--drain-timeout must be a whole number of ms, got "${drain}"`)
  }
  const inherit = values.get('inherit-listen')
  if (inherit !== undefined && inherit !== 'ipc') usage(`--inherit-listen must be ipc, got "${inherit}"`)
  return {
    control: need('control'),
    listenHost: host,
    listenPort: port,
    mode,
    state: need('state'),
    log: values.get('log'),
    drainTimeoutMs,
    inheritListen: inherit === 'ipc',
  }
}

/** Parses `host:port` or `[v6host]:port`; the port must be 1..65535. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text)
  const port = Number(m?.[3])
  if (m === null || !(port >= 1 && port <= 65535)) usage(`--listen must be host:port, got "${text}"`)
  return { host: m[1] ?? m[2] ?? '', port }
}

/**
 * Validates a backend list received over the control socket or read from the state file: an array of
 * `{id, host, port}` with unique ids.
 */
export function parseBackends(value: unknown, where: string): Backend[] {
  if (!Array.isArray(value)) throw new GrailError('PROXY_BAD_BACKENDS', `${where}: backends must be an array`)
  const ids = new Set<string>()
  return value.map((b: unknown, i) => {
    const o = (typeof b === 'object' && b !== null ? b : {}) as Record<string, unknown>
    const { id, host, port } = o
    if (typeof id !== 'string' || id === '' || typeof host !== 'string' || host === '') {
      throw new GrailError('PROXY_BAD_BACKENDS', `${where}: backends[${i}] needs a non-empty id and host`)
    }
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new GrailError('PROXY_BAD_BACKENDS', `${where}: backends[${i}].port must be 1..65535`)
    }
    if (ids.has(id)) throw new GrailError('PROXY_BAD_BACKENDS', `${where}: backend id "${id}" appears twice`)
    ids.add(id)
    if (o.check === undefined) return { id, host, port }
    return { id, host, port, check: parseCheck(o.check, `${where}: backends[${i}].check`) }
  })
}

function parseCheck(value: unknown, where: string): BackendCheck {
  const o = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>
  const bad = (what: string): never => {
    throw new GrailError('PROXY_BAD_BACKENDS', `${where}: ${what}`)
  }
  const whole = (k: string, min: number, max: number): number => {
    const v = o[k]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      bad(`${k} must be ${min}..${max}`)
    return v as number
  }
  const timing = {
    port: whole('port', 1, 65535),
    interval: whole('interval', 1, 86_400_000),
    timeout: whole('timeout', 1, 86_400_000),
  }
  if (o.type === 'tcp') return { type: 'tcp', ...timing }
  if (o.type !== 'http') return bad('type must be http or tcp')
  const { path } = o
  if (typeof path !== 'string' || !path.startsWith('/')) return bad('path must start with /')
  return { type: 'http', path, expectStatus: whole('expectStatus', 100, 599), ...timing }
}

function usage(message: string): never {
  throw new GrailError('PROXY_DAEMON_USAGE', message, {
    hint: 'the proxy daemon is started by Grail (ensureProxy); this is a bug if Grail started it',
  })
}
