import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, openSync } from 'node:fs'
import { mkdir, open, readFile, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { GrailError, isErrno } from '../errors.js'
import { writeAtomic } from '../util/write-atomic.js'
import { createProxyClient, type ProxyClient } from './control-client.js'
import { daemonArgv, DaemonExit, formatListen, type ProxyStatus } from './daemon-protocol.js'
import { isAlive, isProxyDaemon, signal, waitForExit } from './process.js'
import type { Ejection } from './types.js'

export type { ProxyClient } from './control-client.js'
export type { ProxyStatus } from './daemon-protocol.js'
export { type FoundProxy, listProxies } from './owners.js'

/** Where and how one service's proxy daemon runs. */
export interface EnsureProxyOptions {
  /** The daemon's directory, e.g. `.grail/proxy/<env>-<service>`: pid, control socket, state, log. */
  readonly dir: string
  readonly listenHost: string
  /** 1..65535: the daemon must come back on the same port after a restart, so 0 is refused. */
  readonly listenPort: number
  readonly mode: 'http' | 'tcp'
  /** Drain timeout of the daemon's swaps and shutdown. Default 30 000 (the proxy's default). */
  readonly drainTimeoutMs?: number
  /** How long a freshly spawned daemon may take to answer on its control socket. Default 15 000. */
  readonly startTimeoutMs?: number
  /** Who the proxy belongs to (e.g. environment and service), written to `owner.json` for `listProxies`. */
  readonly owner?: Readonly<Record<string, string>>
}

/** The files of a proxy directory. */
export interface ProxyFiles {
  readonly dir: string
  /** Pid of the daemon that serves now (written by its keeper at each start). */
  readonly pid: string
  /** Pid of the keeper that restarts the daemon. */
  readonly keeperPid: string
  readonly owner: string
  /** The control socket: `dir/control.sock`, or under /tmp when that path is too long for a unix socket. */
  readonly socket: string
  /** Holds `socket` when it is not inside `dir`, for people and tools looking at the directory. */
  readonly socketNote: string
  readonly state: string
  readonly log: string
}

const DEFAULT_DRAIN_TIMEOUT_MS = 30_000
/** Two node processes (keeper and daemon) start in sequence; on a loaded 2-core machine that took 6 s. */
const DEFAULT_START_TIMEOUT_MS = 15_000
/** sun_path holds 108 bytes on Linux, 104 on macOS; stay well under both. */
const MAX_SOCKET_PATH = 100

/** The file layout of the proxy directory `dir` (resolved to an absolute path). */
export function proxyFiles(dir: string): ProxyFiles {
  const abs = resolve(dir)
  const inDir = join(abs, 'control.sock')
  const socket =
    Buffer.byteLength(inDir) < MAX_SOCKET_PATH
      ? inDir
      : `/tmp/grail-proxy-${createHash('sha256').update(abs).digest('hex').slice(0, 20)}.sock`
  return {
    dir: abs,
    pid: join(abs, 'pid'),
    keeperPid: join(abs, 'keeper.pid'),
    owner: join(abs, 'owner.json'),
    socket,
    socketNote: join(abs, 'socket'),
    state: join(abs, 'state.json'),
    log: join(abs, 'proxy.log'),
  }
}

/**
 * Returns a client for the proxy daemon of `dir`, starting it when needed. A daemon that answers on its
 * control socket with the same listen address and mode, under its keeper, is reused (it outlives the CLI
 * that started it); one with another address, or one whose keeper died, is stopped and replaced, keeping
 * its persisted routes. Stale pid and socket files are removed; a new keeper is spawned detached and the
 * daemon it runs is ready (listening, routes restored) when this resolves. Rejects with
 * PROXY_PORT_IN_USE when another process holds the port.
 */
export async function ensureProxy(opts: EnsureProxyOptions): Promise<ProxyClient> {
  if (!(Number.isInteger(opts.listenPort) && opts.listenPort >= 1 && opts.listenPort <= 65535)) {
    throw new GrailError('PROXY_PORT', `the proxy port must be 1..65535, got ${opts.listenPort}`)
  }
  const files = proxyFiles(opts.dir)
  await mkdir(files.dir, { recursive: true, mode: 0o700 })
  if (opts.owner !== undefined) await writeAtomic(files.owner, `${JSON.stringify(opts.owner)}\n`)
  const drainWaitMs = (opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS) + 30_000
  const startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS
  const running = await findDaemon(files, startTimeoutMs)
  if (running !== undefined) {
    const { listen, mode, pid } = running
    const same = listen.host === opts.listenHost && listen.port === opts.listenPort && mode === opts.mode
    if (same && running.supervisor !== null) {
      // The pid file may be missing when a CLI died between spawn and writing it.
      if ((await readPid(files.pid)) !== pid) await writeAtomic(files.pid, `${pid}\n`)
      return createProxyClient({ socketPath: files.socket, pid, drainWaitMs })
    }
    await stopDaemon(files, pid, drainWaitMs)
  }
  await removeRuntimeFiles(files)
  try {
    const pid = await spawnKeeper(files, opts, startTimeoutMs)
    return createProxyClient({ socketPath: files.socket, pid, drainWaitMs })
  } catch (err) {
    // Another grail command started the same proxy a moment ago: use that one.
    const now =
      err instanceof GrailError && err.code === 'PROXY_PORT_IN_USE' ? await probe(files.socket) : undefined
    if (now === undefined || now.listen.port !== opts.listenPort) throw err
    // our failed keeper overwrote the pid files of the pair that won
    await writeAtomic(files.pid, `${now.pid}\n`)
    if (now.supervisor !== null) await writeAtomic(files.keeperPid, `${now.supervisor}\n`)
    return createProxyClient({ socketPath: files.socket, pid: now.pid, drainWaitMs })
  }
}

/** What the daemon of `dir` answers on its control socket, or undefined when nothing answers. */
export function proxyStatus(dir: string): Promise<ProxyStatus | undefined> {
  return probe(proxyFiles(dir).socket)
}

/** How a proxy daemon is doing, as `status` reports it. */
export type ProxyHealth =
  | {
      readonly state: 'up'
      readonly pid: number
      readonly keeper: number
      readonly backends: number
      readonly ejected: Ejection[]
    }
  | {
      readonly state: 'unsupervised'
      readonly pid: number
      readonly backends: number
      readonly ejected: Ejection[]
    }
  | { readonly state: 'down'; readonly pid?: number }

/**
 * Probes the daemon of `dir` without starting anything: `up` (answering, under its keeper),
 * `unsupervised` (answering, keeper gone) or `down`. A daemon its keeper is restarting gets up to
 * `waitMs` to answer.
 */
export async function proxyHealth(dir: string, waitMs = 10_000): Promise<ProxyHealth> {
  const files = proxyFiles(dir)
  let status = await probe(files.socket)
  const keeper = await readPid(files.keeperPid)
  if (status === undefined && keeper !== undefined && (await isOurs(keeper, files))) {
    const deadline = Date.now() + waitMs
    while (status === undefined && Date.now() < deadline && (await isAlive(keeper))) {
      await sleep(50)
      status = await probe(files.socket)
    }
  }
  if (status === undefined) {
    const pid = await readPid(files.pid)
    return pid === undefined ? { state: 'down' } : { state: 'down', pid }
  }
  const backends = status.backends.length
  // a daemon started by an older Grail reports no ejections
  const ejected = status.ejected ?? []
  if (status.supervisor === null) return { state: 'unsupervised', pid: status.pid, backends, ejected }
  return { state: 'up', pid: status.pid, keeper: status.supervisor, backends, ejected }
}

/**
 * Stops the proxy daemon of `dir` and its keeper: asks the daemon to drain and exit over its control
 * socket (its keeper then exits too), or SIGTERMs the recorded keeper (which stops its daemon) or daemon
 * when the socket is dead; SIGKILLs those exact pids if they still run after `graceMs` (the keeper first,
 * so it cannot start another daemon), then removes the directory. Resolves with the daemon pid that was
 * stopped, if any.
 */
export async function stopProxy(dir: string, opts: { graceMs?: number } = {}): Promise<{ pid?: number }> {
  const files = proxyFiles(dir)
  const graceMs = opts.graceMs ?? DEFAULT_DRAIN_TIMEOUT_MS + 5_000
  const status = await probe(files.socket)
  const pid = status?.pid ?? (await readPid(files.pid))
  await stopDaemon(files, pid, graceMs, status !== undefined)
  await rm(files.dir, { recursive: true, force: true })
  await rm(files.socket, { force: true })
  return pid === undefined ? {} : { pid }
}

async function stopDaemon(
  files: ProxyFiles,
  pid: number | undefined,
  graceMs: number,
  answering = true,
): Promise<void> {
  const deadline = Date.now() + graceMs
  const { keeper, daemon } = await ourProcesses(files, pid)
  let asked = false
  if (answering && pid !== undefined) {
    try {
      await createProxyClient({ socketPath: files.socket, pid, drainWaitMs: graceMs }).shutdown()
      asked = true
    } catch (err) {
      if (!isControlDown(err)) throw err
    }
  }
  if (!asked) {
    // the keeper forwards SIGTERM to its daemon and exits once it did
    if (keeper !== undefined) signal(keeper, 'SIGTERM')
    else if (daemon !== undefined) signal(daemon, 'SIGTERM')
  }
  for (const p of [keeper, daemon]) {
    if (p === undefined) continue
    if (await waitForExit(p, Math.max(0, deadline - Date.now()))) continue
    signal(p, 'SIGKILL')
    if (!(await waitForExit(p, 5_000))) {
      throw new Error(
        `proxy process pid ${p} survived SIGKILL for 5 s (this is a bug, or the process is stuck in the kernel)`,
      )
    }
  }
}

/** True when `pid` runs and is this directory's daemon or keeper (a pid file can outlive its process). */
async function isOurs(pid: number, files: ProxyFiles): Promise<boolean> {
  return (await isAlive(pid)) && (await isProxyDaemon(pid, files.socket))
}

/** The keeper (from its pid file) and the daemon `pid` of `files`, each only while it runs and is ours. */
async function ourProcesses(
  files: ProxyFiles,
  pid: number | undefined,
): Promise<{ keeper: number | undefined; daemon: number | undefined }> {
  const keeperPid = await readPid(files.keeperPid)
  return {
    keeper: keeperPid !== undefined && (await isOurs(keeperPid, files)) ? keeperPid : undefined,
    daemon: pid !== undefined && (await isOurs(pid, files)) ? pid : undefined,
  }
}

/**
 * The status of the daemon of `files`, or undefined when none runs. A daemon that does not answer (yet),
 * or whose keeper is restarting it, gets `waitMs` to do so; then the keeper and the daemon are killed:
 * they can never serve.
 */
async function findDaemon(files: ProxyFiles, waitMs: number): Promise<ProxyStatus | undefined> {
  const status = await probe(files.socket)
  if (status !== undefined) return status
  const { keeper, daemon } = await ourProcesses(files, await readPid(files.pid))
  if (keeper === undefined && daemon === undefined) return undefined
  const deadline = Date.now() + waitMs
  while (Date.now() < deadline) {
    const s = await probe(files.socket)
    if (s !== undefined) return s
    if (
      !(keeper !== undefined && (await isAlive(keeper))) &&
      !(daemon !== undefined && (await isAlive(daemon)))
    )
      return undefined
    await sleep(50)
  }
  for (const p of [keeper, daemon]) {
    if (p === undefined || !(await isAlive(p))) continue
    signal(p, 'SIGKILL')
    await waitForExit(p, 5_000)
  }
  return undefined
}

/** GET /status, or undefined when nothing answers on the socket. */
async function probe(socketPath: string): Promise<ProxyStatus | undefined> {
  try {
    return await createProxyClient({ socketPath, pid: 0 }).status()
  } catch (err) {
    if (isControlDown(err)) return undefined
    throw err
  }
}

function isControlDown(err: unknown): boolean {
  return ['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].some((c) => isErrno(err, c))
}

/** Node arguments that run the keeper entry next to this module: the .js from dist, the .ts via tsx. */
function keeperCommand(): string[] {
  const here = import.meta.url
  if (here.endsWith('.ts')) {
    return ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('./keeper-main.ts', here))]
  }
  return [fileURLToPath(new URL('./keeper-main.js', here))]
}

/** Spawns the keeper (which runs the daemon) and waits for the daemon to answer; resolves with its pid. */
async function spawnKeeper(files: ProxyFiles, opts: EnsureProxyOptions, timeoutMs: number): Promise<number> {
  if (files.socket !== join(files.dir, 'control.sock'))
    await writeAtomic(files.socketNote, `${files.socket}\n`)
  const argv = daemonArgv({
    control: files.socket,
    listenHost: opts.listenHost,
    listenPort: opts.listenPort,
    mode: opts.mode,
    state: files.state,
    log: files.log,
    drainTimeoutMs: opts.drainTimeoutMs,
    inheritListen: false,
  })
  const logFd = openSync(files.log, 'a')
  let exitCode: number | null | undefined
  let spawnError: Error | undefined
  try {
    // detached: its own session, so the CLI's Ctrl-C or exit does not reach it; cwd '/' pins no directory.
    const child = spawn(process.execPath, [...keeperCommand(), '--pid-file', files.pid, ...argv], {
      detached: true,
      stdio: ['ignore', logFd, logFd],
      cwd: '/',
    })
    child.on('error', (err) => {
      spawnError = err
    })
    child.on('exit', (code, signal) => {
      exitCode = code ?? (signal === null ? null : -1)
    })
    child.unref()
    if (child.pid === undefined) await sleep(0)
    if (child.pid === undefined) {
      throw new GrailError('PROXY_START', `could not start the proxy daemon: ${spawnError?.message}`, {
        cause: spawnError,
      })
    }
    const keeper = child.pid
    await writeAtomic(files.keeperPid, `${keeper}\n`)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (exitCode !== undefined) throw await startFailure(files, opts, exitCode)
      const status = await probe(files.socket)
      if (status !== undefined) return status.pid
      if (Date.now() >= deadline) break
      await sleep(25)
    }
    if (await isAlive(keeper)) signal(keeper, 'SIGKILL')
    const daemon = await readPid(files.pid)
    if (daemon !== undefined && (await isOurs(daemon, files))) signal(daemon, 'SIGKILL')
    throw new GrailError(
      'PROXY_START',
      `the proxy daemon for ${formatListen(opts.listenHost, opts.listenPort)} did not answer within ${timeoutMs} ms`,
      { hint: `see its log ${files.log}` },
    )
  } finally {
    closeSync(logFd)
  }
}

async function startFailure(
  files: ProxyFiles,
  opts: EnsureProxyOptions,
  code: number | null,
): Promise<Error> {
  const where = formatListen(opts.listenHost, opts.listenPort)
  if (code === DaemonExit.portInUse) {
    return new GrailError(
      'PROXY_PORT_IN_USE',
      `port ${opts.listenPort} on ${opts.listenHost} is already in use by another process; the proxy cannot listen on ${where}`,
      {
        hint: `find the owner with \`ss -ltnp 'sport = :${opts.listenPort}'\` and stop it, or give the service another public port`,
      },
    )
  }
  return new GrailError(
    'PROXY_START',
    `the proxy daemon for ${where} exited with code ${code} before it was ready: ${await lastFatal(files.log)}`,
    { hint: `see its log ${files.log}` },
  )
}

/** The message of the last `fatal` line of a daemon log (its reason to exit at startup). */
async function lastFatal(log: string): Promise<string> {
  const fh = await open(log, 'r')
  try {
    const { size } = await fh.stat()
    const len = Math.min(size, 16_384)
    const buf = Buffer.alloc(len)
    await fh.read(buf, 0, len, size - len)
    const lines = buf.toString('utf8').split('\n').reverse()
    for (const line of lines) {
      if (!line.includes('"event":"fatal"')) continue
      return (JSON.parse(line) as { msg?: string }).msg ?? line
    }
    return lines.find((l) => l.trim() !== '') ?? 'no message'
  } finally {
    await fh.close()
  }
}

async function removeRuntimeFiles(files: ProxyFiles): Promise<void> {
  await rm(files.pid, { force: true })
  await rm(files.keeperPid, { force: true })
  await rm(files.socket, { force: true })
}

async function readPid(file: string): Promise<number | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined
    throw err
  }
  const pid = Number(text.trim())
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}
