import { type ChildProcess, fork, spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { isErrno } from '../../errors.js'
import { writeAtomic } from '../../util/write-atomic.js'
import { isAlive } from '../process.js'
import type { ProxyLog } from '../types.js'
import { renderCheckMap, renderConfig } from './config.js'
import { checkMap, type DataPlaneFiles, dataPlaneFiles, type KeeperState, type RoutesFile } from './files.js'
import { adminCommand, parseInfoPid } from './runtime-api.js'

export interface HaproxyKeeperOptions {
  /** the data plane directory */
  readonly dir: string
  /** the HAProxy executable */
  readonly haproxy: string
  /** node arguments that run this keeper's entry again, as a binder: `[...execArgv, entry]` */
  readonly entry: readonly string[]
  readonly log: ProxyLog
}

/** A listening socket the keeper holds for one route. */
interface Held {
  readonly host: string
  readonly port: number
  readonly fd: number
  readonly handle: { fd: number; close(cb?: () => void): void }
}

const READY_TIMEOUT_MS = 15_000
const QUICK_FAILURE_MS = 10_000
const MAX_BACKOFF_MS = 5_000
const MAX_QUICK_FAILURES = 8
/** How long a bind retries a port that the HAProxy of a dead keeper is letting go of. */
const BIND_RETRY_MS = 3_000

/**
 * Keeps the data plane running. The keeper binds the listening socket of every route (in a short-lived
 * child, so that it never accepts a connection itself), holds it, and passes it to HAProxy as an inherited
 * file descriptor (`bind fd@N`): when HAProxy dies, the port stays open and connections made until the
 * next HAProxy runs wait in the kernel's accept queue; only what was in flight is lost. HAProxy is started
 * from the configuration rendered from `routes.json` at that moment, so it comes back with the routes of
 * the last change. SIGHUP reloads: the routes are read again, sockets bound or closed, and a new HAProxy
 * takes over from the old one (`-sf`), which finishes its connections. SIGTERM stops: HAProxy stops
 * listening and finishes its connections (soft stop), then the keeper exits 0. Resolves with the exit code.
 */
export function runHaproxyKeeper(opts: HaproxyKeeperOptions): Promise<number> {
  const files = dataPlaneFiles(opts.dir)
  const { log } = opts
  const held = new Map<string, Held>()
  let child: ChildProcess | undefined
  /** HAProxy processes replaced by a reload, finishing their connections */
  const retiring = new Set<ChildProcess>()
  const retiringPids = () => [...retiring].map((r) => r.pid ?? 0).filter((p) => p > 0)
  let stopping = false
  let everReady = false
  let quickFailures = 0
  let queue: Promise<void> = Promise.resolve()
  let finish: (code: number) => void = () => {}
  const done = new Promise<number>((resolve) => {
    finish = resolve
  })

  const enqueue = (what: string, fn: () => Promise<void>): void => {
    queue = queue.then(fn).catch((err: unknown) => {
      log('keeper-error', { during: what, error: (err as Error).message })
      if (!everReady) finish(1)
    })
  }

  /** Reads the routes, binds what is missing, and starts a HAProxy (taking over from `previous`). */
  const start = async (reason: string): Promise<void> => {
    if (stopping) return
    const routes = await readRoutes(files)
    const listenErrors = await syncListeners(routes, held, opts.entry, log)
    const fds: Record<string, number> = {}
    const passed: number[] = []
    for (const [key, h] of held) {
      fds[key] = 3 + passed.length
      passed.push(h.fd)
    }
    // the check maps and the TLS directory live where the configuration can name them (files.ts)
    await mkdir(files.mapDir, { recursive: true, mode: 0o700 })
    for (const [key, r] of Object.entries(routes.routes)) {
      await writeAtomic(checkMap(files, key), renderCheckMap(r), { mode: 0o600, durable: false })
    }
    const mapOf = (key: string) => checkMap(files, key)
    await writeAtomic(files.config, renderConfig(routes, { socket: files.socket, fds, mapOf }), {
      mode: 0o600,
    })
    const previous = child
    const logged = Object.values(routes.routes).some((r) => r.accessLog)
    const out = logged ? openSync(files.accessLog, 'a', 0o600) : 'inherit'
    const startedAt = Date.now()
    const argv = [
      '-db',
      '-f',
      files.config,
      ...(previous?.pid === undefined ? [] : ['-sf', String(previous.pid)]),
    ]
    let c: ChildProcess
    try {
      c = spawn(opts.haproxy, argv, { stdio: ['ignore', out, 'inherit', ...passed], cwd: '/' })
    } finally {
      if (typeof out === 'number') closeSync(out)
    }
    child = c
    let exited = false
    c.on('error', (err) => log('haproxy-spawn-error', { error: err.message }))
    c.on('exit', (code, sig) => {
      exited = true
      log('haproxy-exit', { pid: c.pid, code, signal: sig })
      retiring.delete(c)
      if (stopping && child === undefined && retiring.size === 0) return finish(0)
      if (child !== c) return
      child = undefined
      if (stopping) return retiring.size === 0 ? finish(0) : undefined
      if (!everReady) return finish(code ?? 1)
      quickFailures = Date.now() - startedAt < QUICK_FAILURE_MS ? quickFailures + 1 : 0
      if (quickFailures > MAX_QUICK_FAILURES) {
        log('keeper-give-up', { failures: quickFailures })
        return finish(1)
      }
      const delay = quickFailures <= 1 ? 0 : Math.min(MAX_BACKOFF_MS, 100 * 2 ** (quickFailures - 2))
      log('haproxy-restart', { after: code === null ? sig : `code ${code}`, delayMs: delay })
      setTimeout(() => enqueue('restart', () => start('restart')), delay)
    })
    const deadline = Date.now() + READY_TIMEOUT_MS
    for (;;) {
      if (exited) {
        if (previous !== undefined && child === c) {
          // a reload that failed (a configuration HAProxy refused): the previous process serves on
          child = previous
          await writeState(
            files,
            previous.pid ?? 0,
            routes.generation - 1,
            listenErrors,
            retiringPids(),
            'reload failed',
          )
        }
        return
      }
      const pid = await adminCommand(files.socket, 'show info', 1_000).then(parseInfoPid, () => undefined)
      if (pid === c.pid) break
      if (Date.now() > deadline) {
        log('haproxy-not-ready', { pid: c.pid })
        c.kill('SIGKILL')
        return
      }
      await sleep(20)
    }
    everReady = true
    if (previous !== undefined && previous.exitCode === null && previous.signalCode === null)
      retiring.add(previous)
    await writeState(files, c.pid ?? 0, routes.generation, listenErrors, retiringPids())
    log('haproxy-ready', {
      pid: c.pid,
      reason,
      generation: routes.generation,
      routes: Object.keys(fds).length,
    })
  }

  const stop = (sig: string): void => {
    log('keeper-stop', { signal: sig })
    stopping = true
    queue = queue.then(async () => {
      const c = child
      // soft stop: HAProxy closes its listeners and exits when its connections are done
      for (const r of retiring) r.kill('SIGUSR1')
      if (c === undefined || c.exitCode !== null) {
        if (retiring.size === 0) finish(0)
        return
      }
      c.kill('SIGUSR1')
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGHUP', () => enqueue('reload', () => start('reload')))
  enqueue('start', async () => {
    await releaseOrphan(files, log)
    await start('start')
  })
  return done.then((code) => {
    for (const h of held.values()) h.handle.close()
    return code
  })
}

async function readRoutes(files: DataPlaneFiles): Promise<RoutesFile> {
  try {
    return JSON.parse(await readFile(files.routes, 'utf8')) as RoutesFile
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { version: 1, generation: 0, routes: {} }
    throw new Error(`${files.routes}: ${(err as Error).message}`, { cause: err })
  }
}

async function writeState(
  files: DataPlaneFiles,
  pid: number,
  generation: number,
  listenErrors: Record<string, string>,
  retiring: number[],
  loadError?: string,
): Promise<void> {
  const state: KeeperState & { loadError?: string } = {
    keeper: process.pid,
    pid,
    retiring,
    generation,
    listenErrors,
    since: new Date().toISOString(),
    ...(loadError === undefined ? {} : { loadError }),
  }
  await writeAtomic(files.state, `${JSON.stringify(state)}\n`, { mode: 0o600 })
}

/**
 * Binds the listening socket of every route that has none, closes those of routes that are gone or
 * moved. Returns, per route key, why its port could not be bound.
 */
async function syncListeners(
  routes: RoutesFile,
  held: Map<string, Held>,
  entry: readonly string[],
  log: ProxyLog,
): Promise<Record<string, string>> {
  const errors: Record<string, string> = {}
  for (const [key, h] of [...held]) {
    const r = routes.routes[key]
    if (r !== undefined && r.listen.host === h.host && r.listen.port === h.port) continue
    h.handle.close()
    held.delete(key)
    log('unlisten', { route: key, host: h.host, port: h.port })
  }
  for (const [key, r] of Object.entries(routes.routes)) {
    if (held.has(key)) continue
    const got = await bindListener(r.listen.host, r.listen.port, entry)
    if ('error' in got) {
      errors[key] = got.error
      log('listen-error', { route: key, host: r.listen.host, port: r.listen.port, error: got.error })
      continue
    }
    held.set(key, { host: r.listen.host, port: r.listen.port, fd: got.handle.fd, handle: got.handle })
    log('listen', { route: key, host: r.listen.host, port: r.listen.port })
  }
  return errors
}

/** Binds `host:port` in a child (which never accepts on it) and receives the listening socket over IPC. */
async function bindListener(
  host: string,
  port: number,
  entry: readonly string[],
): Promise<{ handle: Held['handle'] } | { error: string }> {
  const deadline = Date.now() + BIND_RETRY_MS
  for (;;) {
    const got = await new Promise<{ handle: Held['handle'] } | { error: string }>((resolve) => {
      const script = entry[entry.length - 1] as string
      const c = fork(script, ['--bind', host, String(port)], {
        execArgv: entry.slice(0, -1),
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        cwd: '/',
      })
      let answer: { handle: Held['handle'] } | { error: string } = {
        error: 'the binder exited without an answer',
      }
      c.on('message', (m: { type?: string; code?: string }, handle: unknown) => {
        if (m?.type === 'bound' && typeof handle === 'object' && handle !== null)
          answer = { handle: handle as Held['handle'] }
        else if (m?.type === 'error') answer = { error: m.code ?? 'bind failed' }
      })
      c.on('error', (err) => {
        answer = { error: err.message }
      })
      c.on('close', () => resolve(answer))
    })
    if ('handle' in got || got.error !== 'EADDRINUSE' || Date.now() > deadline) return got
    await sleep(50)
  }
}

/**
 * A HAProxy whose keeper died serves on (it holds the listening sockets): ask it to let go of them and
 * finish its connections, so that this keeper can bind the ports and start its own.
 */
async function releaseOrphan(files: DataPlaneFiles, log: ProxyLog): Promise<void> {
  let state: KeeperState
  try {
    state = JSON.parse(await readFile(files.state, 'utf8')) as KeeperState
  } catch {
    return
  }
  if (!(state.pid > 0) || !(await isHaproxyOf(state.pid, files))) return
  log('orphan-release', { pid: state.pid })
  process.kill(state.pid, 'SIGUSR1')
}

/** True when `pid` runs HAProxy with this data plane's configuration (guards every signal Grail sends). */
export async function isHaproxyOf(pid: number, files: DataPlaneFiles): Promise<boolean> {
  if (!(await isAlive(pid))) return false
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
  return cmdline.split('\0').includes(files.config)
}

/** The binder: binds `host:port`, passes the listening socket to the keeper and exits. */
export function runBinder(host: string, port: number): void {
  void import('node:net').then(({ createServer }) => {
    const server = createServer()
    server.on('error', (err: NodeJS.ErrnoException) => {
      process.send?.({ type: 'error', code: err.code ?? err.message }, () => process.exit(0))
    })
    server.listen({ host, port, backlog: 4096 }, () => {
      const handle = (server as unknown as { _handle: object })._handle
      process.send?.({ type: 'bound' }, handle as never, () => process.exit(0))
    })
  })
}
