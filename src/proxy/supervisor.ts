import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, openSync } from 'node:fs'
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { GrailError, isErrno } from '../errors.js'
import { createProxyClient, type ProxyClient } from './control-client.js'
import { daemonArgv, DaemonExit, formatListen, type ProxyStatus } from './daemon-protocol.js'
import { isAlive, isProxyDaemon, signal, waitForExit } from './process.js'

export type { ProxyClient } from './control-client.js'
export type { ProxyStatus } from './daemon-protocol.js'

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
  /** How long a freshly spawned daemon may take to answer on its control socket. Default 5 000. */
  readonly startTimeoutMs?: number
}

/** The files of a proxy directory. */
export interface ProxyFiles {
  readonly dir: string
  readonly pid: string
  /** The control socket: `dir/control.sock`, or under /tmp when that path is too long for a unix socket. */
  readonly socket: string
  /** Holds `socket` when it is not inside `dir`, for people and tools looking at the directory. */
  readonly socketNote: string
  readonly state: string
  readonly log: string
}

const DEFAULT_DRAIN_TIMEOUT_MS = 30_000
const DEFAULT_START_TIMEOUT_MS = 5_000
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
    socket,
    socketNote: join(abs, 'socket'),
    state: join(abs, 'state.json'),
    log: join(abs, 'proxy.log'),
  }
}

/**
 * Returns a client for the proxy daemon of `dir`, starting it when needed. A daemon that answers on its
 * control socket with the same listen address and mode is reused (it outlives the CLI that started it);
 * one with another address is stopped and replaced, keeping its persisted routes. Stale pid and socket
 * files are removed; a new daemon is spawned detached and is ready (listening, routes restored) when this
 * resolves. Rejects with PROXY_PORT_IN_USE when another process holds the port.
 */
export async function ensureProxy(opts: EnsureProxyOptions): Promise<ProxyClient> {
  if (!(Number.isInteger(opts.listenPort) && opts.listenPort >= 1 && opts.listenPort <= 65535)) {
    throw new GrailError('PROXY_PORT', `the proxy port must be 1..65535, got ${opts.listenPort}`)
  }
  const files = proxyFiles(opts.dir)
  await mkdir(files.dir, { recursive: true, mode: 0o700 })
  const drainWaitMs = (opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS) + 30_000
  const startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS
  const running = await findDaemon(files, startTimeoutMs)
  if (running !== undefined) {
    const { listen, mode, pid } = running
    if (listen.host === opts.listenHost && listen.port === opts.listenPort && mode === opts.mode) {
      // The pid file may be missing when a CLI died between spawn and writing it.
      if ((await readPid(files.pid)) !== pid) await writeAtomic(files.pid, `${pid}\n`)
      return createProxyClient({ socketPath: files.socket, pid, drainWaitMs })
    }
    await stopDaemon(files, pid, drainWaitMs)
  }
  await removeRuntimeFiles(files)
  const pid = await spawnDaemon(files, opts, startTimeoutMs)
  return createProxyClient({ socketPath: files.socket, pid, drainWaitMs })
}

/**
 * Stops the proxy daemon of `dir`: asks it to drain and exit over its control socket (or SIGTERMs the
 * recorded pid when the socket is dead), SIGKILLs that exact pid if it still runs after `graceMs`, then
 * removes the directory. Resolves with the pid that was stopped, if any.
 */
export async function stopProxy(dir: string, opts: { graceMs?: number } = {}): Promise<{ pid?: number }> {
  const files = proxyFiles(dir)
  const graceMs = opts.graceMs ?? DEFAULT_DRAIN_TIMEOUT_MS + 5_000
  const status = await probe(files.socket)
  const pid = status?.pid ?? (await readPid(files.pid))
  if (pid !== undefined) await stopDaemon(files, pid, graceMs, status !== undefined)
  await rm(files.dir, { recursive: true, force: true })
  await rm(files.socket, { force: true })
  return pid === undefined ? {} : { pid }
}

async function stopDaemon(files: ProxyFiles, pid: number, graceMs: number, answering = true): Promise<void> {
  const deadline = Date.now() + graceMs
  let asked = false
  if (answering) {
    try {
      await createProxyClient({ socketPath: files.socket, pid, drainWaitMs: graceMs }).shutdown()
      asked = true
    } catch (err) {
      if (!isControlDown(err)) throw err
    }
  }
  if (!(await isAlive(pid)) || !(await isProxyDaemon(pid, files.socket))) return
  if (!asked) signal(pid, 'SIGTERM')
  if (await waitForExit(pid, Math.max(0, deadline - Date.now()))) return
  signal(pid, 'SIGKILL')
  if (!(await waitForExit(pid, 5_000))) {
    throw new Error(
      `proxy daemon pid ${pid} survived SIGKILL for 5 s (this is a bug, or the process is stuck in the kernel)`,
    )
  }
}

/**
 * The status of the daemon of `files`, or undefined when none runs. A recorded pid that is our daemon
 * but does not answer (yet) gets `waitMs` to do so, then is killed: it can never serve.
 */
async function findDaemon(files: ProxyFiles, waitMs: number): Promise<ProxyStatus | undefined> {
  const status = await probe(files.socket)
  if (status !== undefined) return status
  const pid = await readPid(files.pid)
  if (pid === undefined || !(await isAlive(pid)) || !(await isProxyDaemon(pid, files.socket)))
    return undefined
  const deadline = Date.now() + waitMs
  while (Date.now() < deadline && (await isAlive(pid))) {
    const s = await probe(files.socket)
    if (s !== undefined) return s
    await sleep(50)
  }
  if (await isAlive(pid)) {
    signal(pid, 'SIGKILL')
    await waitForExit(pid, 5_000)
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

/** Node arguments that run the daemon entry next to this module: the .js from dist, the .ts via tsx. */
function daemonCommand(): string[] {
  const here = import.meta.url
  if (here.endsWith('.ts')) {
    return ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('./daemon-main.ts', here))]
  }
  return [fileURLToPath(new URL('./daemon-main.js', here))]
}

async function spawnDaemon(files: ProxyFiles, opts: EnsureProxyOptions, timeoutMs: number): Promise<number> {
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
  })
  const logFd = openSync(files.log, 'a')
  let exitCode: number | null | undefined
  let spawnError: Error | undefined
  try {
    // detached: its own session, so the CLI's Ctrl-C or exit does not reach it; cwd '/' pins no directory.
    const child = spawn(process.execPath, [...daemonCommand(), ...argv], {
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
    const pid = child.pid
    await writeAtomic(files.pid, `${pid}\n`)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (exitCode !== undefined) throw await startFailure(files, opts, exitCode)
      const status = await probe(files.socket)
      if (status !== undefined) return pid
      if (Date.now() >= deadline) break
      await sleep(25)
    }
    if (await isAlive(pid)) signal(pid, 'SIGKILL')
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

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(tmp, text)
  await rename(tmp, file)
}
