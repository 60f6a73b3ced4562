import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { access, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { isErrno } from '../../src/errors.js'
import { runCommand } from '../../src/util/exec.js'
import { mountsUnder } from '../../src/util/mounts.js'

export const DOCKERD = '/usr/sbin/dockerd'
/** The Debian 20.10 client; /usr/local/bin/docker on this machine is a different, newer one. */
export const DOCKER = '/usr/bin/docker'

/** A unix socket path must fit `sun_path`: 108 bytes including the trailing NUL. */
const SUN_PATH_MAX = 107
/** The longest socket dockerd puts under our dir: its managed containerd's, below the exec root. */
const CONTAINERD_SOCK = join('x', 'containerd', 'containerd.sock')
/** Grace period between SIGTERM and SIGKILL; a clean shutdown with no containers takes about 1 s. */
const STOP_GRACE_MS = 15_000

export interface DockerResult {
  code: number
  stdout: string
  stderr: string
}

export interface DockerRunOptions {
  /** Added to the inherited environment (for example `DOCKER_BUILDKIT: '1'`). */
  env?: Record<string, string>
  /** Written to the client's stdin (`docker import -`, `docker load`). */
  input?: string | Buffer
  /** Kills the client when aborted; the promise then rejects with an `AbortError`. */
  signal?: AbortSignal
}

export interface Dockerd {
  /** `unix://…` address for `docker -H` or `DOCKER_HOST`. */
  readonly host: string
  readonly socket: string
  /** The temp dir holding the socket, data root, exec root, pidfile, client config and `dockerd.log`. */
  readonly dir: string
  readonly pid: number
  /** The client's `DOCKER_CONFIG` dir (`dir/cli`): `writeDockerAuth` in registry-docker.ts fills its config.json. */
  readonly cliConfig: string
  /** Runs `/usr/bin/docker -H <host> …args`; resolves with the exit code instead of throwing. */
  docker(args: readonly string[], opts?: DockerRunOptions): Promise<DockerResult>
  /** Stops dockerd (and its containerd), unmounts what it left under `dir`, removes `dir`. Idempotent. */
  stop(): Promise<void>
}

export interface StartDockerdOptions {
  /** A few characters for the temp dir name, to tell parallel daemons apart; keep it short. */
  name?: string
  /** How long to wait for the API to answer; default 30 s (it takes about 0.2 s here). */
  readyTimeoutMs?: number
}

/**
 * Starts a private dockerd on its own socket, data root, exec root and pidfile inside a fresh temp dir, with
 * its own managed containerd, overlay2 storage and no networking of its own (no bridge, no iptables, so
 * containers must use `--network host`), and resolves once `docker version` answers through it.
 *
 * Nothing stops the daemon if the test process dies without calling `stop()`: an async cleanup cannot run
 * from a process 'exit' handler. Call `stop()` from an `after` hook. A test file that forgets to keeps the
 * child referenced and therefore hangs, which makes the mistake visible. Ctrl-C reaches dockerd too (same
 * process group), and it shuts down cleanly on SIGINT, though the temp dir is left behind.
 */
export async function startDockerd(opts: StartDockerdOptions = {}): Promise<Dockerd> {
  const dir = await makeShortTempDir(`gd-${(opts.name ?? '').slice(0, 12)}`)
  const socket = join(dir, 'd.sock')
  const host = `unix://${socket}`
  const logPath = join(dir, 'dockerd.log')
  const cliConfig = join(dir, 'cli')
  await mkdir(cliConfig)

  const log = openSync(logPath, 'a')
  let child: ChildProcess
  try {
    child = spawn(DOCKERD, dockerdArgs(dir, host), { stdio: ['ignore', log, log] })
  } finally {
    closeSync(log)
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const spawnError = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined))
    child.once('error', resolve)
  })
  if (spawnError) {
    await rm(dir, { recursive: true, force: true })
    throw new Error(`cannot start ${DOCKERD}: ${spawnError.message} (scripts/setup installs docker.io)`, {
      cause: spawnError,
    })
  }

  const docker = (args: readonly string[], runOpts: DockerRunOptions = {}): Promise<DockerResult> =>
    runDocker(host, cliConfig, args, runOpts)

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= stopDaemon({ child, exited, dir, docker })
    return stopping
  }

  try {
    await waitReady(socket, docker, opts.readyTimeoutMs ?? 30_000, child)
  } catch (err) {
    const tail = await logTail(logPath) // read before stop() removes the dir
    await stop()
    const reason = err instanceof Error ? err.message : String(err)
    throw new Error(`dockerd (${dir}) did not become ready: ${reason}\n--- dockerd.log tail ---\n${tail}`, {
      cause: err,
    })
  }
  return { host, socket, dir, pid: child.pid as number, cliConfig, docker, stop }
}

/** The dockerd argv: everything it owns lives under `dir`, so parallel daemons never share state. */
export function dockerdArgs(dir: string, host: string): string[] {
  return [
    `--host=${host}`,
    `--data-root=${join(dir, 'data')}`,
    `--exec-root=${join(dir, 'x')}`,
    `--pidfile=${join(dir, 'd.pid')}`,
    '--storage-driver=overlay2',
    '--bridge=none',
    '--iptables=false',
    '--ip-masq=false',
    // No system-wide /etc/docker/daemon.json: its settings (registry mirrors, log drivers) are not ours.
    `--config-file=${join(dir, 'daemon.json')}`,
  ]
}

async function makeShortTempDir(prefix: string): Promise<string> {
  // $TMPDIR may be deep (CI workspaces); sockets below it must still fit sun_path, so fall back to /tmp.
  for (const base of [tmpdir(), '/tmp']) {
    const longest = join(base, `${prefix}XXXXXX`, CONTAINERD_SOCK)
    if (Buffer.byteLength(longest) > SUN_PATH_MAX) continue
    const dir = await mkdtemp(join(base, prefix))
    await writeFile(join(dir, 'daemon.json'), '{}\n')
    return dir
  }
  throw new Error(`no temp dir short enough for unix sockets (${SUN_PATH_MAX} bytes) with prefix ${prefix}`)
}

async function runDocker(
  host: string,
  cliConfig: string,
  args: readonly string[],
  opts: DockerRunOptions,
): Promise<DockerResult> {
  const res = await runCommand(
    {
      file: DOCKER,
      args: ['-H', host, ...args],
      // A private DOCKER_CONFIG keeps the user's contexts, credential helpers and plugins out of the test.
      env: { ...stringEnv(process.env), DOCKER_CONFIG: cliConfig, ...opts.env },
      ...(opts.input === undefined ? {} : { input: opts.input }),
    },
    { allowFailure: true, ...(opts.signal ? { signal: opts.signal } : {}) },
  )
  return { code: res.code, stdout: res.stdout.toString('utf8'), stderr: res.stderr.toString('utf8') }
}

function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v
  return out
}

async function waitReady(
  socket: string,
  docker: Dockerd['docker'],
  timeoutMs: number,
  child: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 'socket not created yet'
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`dockerd exited with ${child.signalCode ?? child.exitCode} before answering`)
    }
    if (await exists(socket)) {
      const res = await docker(['version', '--format', '{{.Server.Version}}'])
      if (res.code === 0) return
      last = res.stderr.trim()
    }
    await sleep(50)
  }
  throw new Error(`no answer from ${socket} within ${timeoutMs} ms (last: ${last})`)
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false
    throw err
  }
}

interface StopContext {
  child: ChildProcess
  exited: Promise<void>
  dir: string
  docker: Dockerd['docker']
}

async function stopDaemon({ child, exited, dir, docker }: StopContext): Promise<void> {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    await killContainers(docker)
    child.kill('SIGTERM')
    const grace = new AbortController()
    const inTime = await Promise.race([
      exited.then(() => true),
      sleep(STOP_GRACE_MS, false, { signal: grace.signal }),
    ]).finally(() => grace.abort()) // a pending 15 s timer would keep the test process alive
    if (!inTime) {
      console.warn(`dockerd ${child.pid} ignored SIGTERM for ${STOP_GRACE_MS} ms; sending SIGKILL`)
      child.kill('SIGKILL')
      await exited
      await killLeftovers(dir)
    }
  }
  await unmountAll(dir)
  await rm(dir, { recursive: true, force: true })
}

/**
 * dockerd gives each running container 10 s to honour SIGTERM before killing it, and most test payloads
 * (busybox httpd as PID 1) ignore it: stopping a daemon with one such container took 12.6 s. The daemon
 * is disposable, so SIGKILL them first. If the API does not answer within 5 s (a hung daemon), skip this:
 * SIGTERM and then SIGKILL below still stop everything, only slower.
 */
async function killContainers(docker: Dockerd['docker']): Promise<void> {
  try {
    const signal = AbortSignal.timeout(5_000)
    const ps = await docker(['ps', '--quiet', '--no-trunc'], { signal })
    const ids = ps.stdout.split('\n').filter(Boolean)
    if (ps.code !== 0 || ids.length === 0) return
    await docker(['kill', ...ids], { signal })
  } catch (err) {
    if (!isErrno(err, 'ABORT_ERR')) throw err
    console.warn('dockerd API did not answer within 5 s while stopping; its containers get SIGTERM instead')
  }
}

/**
 * After a SIGKILL, the runc shims and the containers' processes outlive dockerd (its containerd dies with
 * it). Each is tied to our unique temp dir: the shims (and containerd, should it linger) name it in their argv (`-address
 * <dir>/x/containerd/containerd.sock`), container processes sit in the cgroup `/docker/<id>` of a container
 * listed under `<dir>/data/containers`. (Their `/proc/<pid>/root` reads as `/`: the rootfs mount lives in
 * the container's mount namespace.) Match on exactly that, nothing broader. The empty cgroups stay behind.
 */
async function killLeftovers(dir: string): Promise<void> {
  const ids = await readdir(join(dir, 'data', 'containers')).catch((err: unknown) => {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  })
  const cgroups = ids.map((id) => `/docker/${id}\n`)
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let argv: string[]
    let cgroup: string
    try {
      argv = (await readFile(join('/proc', entry, 'cmdline'), 'utf8')).split('\0')
      cgroup = await readFile(join('/proc', entry, 'cgroup'), 'utf8')
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ESRCH')) continue // exited while we looked
      throw err
    }
    if (!argv.some((arg) => arg.startsWith(`${dir}/`)) && !cgroups.some((c) => cgroup.includes(c))) continue
    try {
      process.kill(Number(entry), 'SIGKILL')
    } catch (err) {
      if (!isErrno(err, 'ESRCH')) throw err
    }
  }
}

/**
 * dockerd unmounts its data-root bind mount and overlay mounts on a clean exit, but leaves the
 * `x/netns/default` nsfs mount that `--network host` containers create, and a SIGKILL leaves everything.
 */
async function unmountAll(dir: string): Promise<void> {
  for (let pass = 0; pass < 5; pass++) {
    const mounts = await mountsUnder(dir)
    if (mounts.length === 0) return
    for (const m of mounts) {
      // A parent unmounted earlier in this pass may already have taken this one with it.
      await runCommand({ file: 'umount', args: [m] }, { allowFailure: true })
    }
  }
  const left = await mountsUnder(dir)
  if (left.length === 0) return
  for (const m of left) await runCommand({ file: 'umount', args: ['--lazy', m] })
}

async function logTail(path: string, lines = 30): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return '(no dockerd.log)'
    throw err
  }
}
