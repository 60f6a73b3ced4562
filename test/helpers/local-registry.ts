// reg-client's own registry helper for the client's unit-level tests (src/oci/registry/*.test.ts), kept beside
// test/helpers/registry.ts (the shared harness) when the branches met; the two could be unified later.
// Debian's docker-registry (distribution) on 127.0.0.1, started by a test: plain http, filesystem storage in
// a temp dir, deletes enabled. The pid is kept and exactly that process is stopped.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { connect } from 'node:net'
import { join } from 'node:path'
import { freePort } from './net.js'

export const DOCKER_REGISTRY = '/usr/bin/docker-registry'

export interface LocalRegistry {
  url: string
  /** `127.0.0.1:PORT` */
  host: string
  dir: string
  /** the running registry process (a new one after `restart`) */
  readonly proc: ChildProcess
  log: () => string
  /** stops the registry and removes its storage */
  stop(): Promise<void>
  /** SIGKILL, as a crash: storage is kept */
  crash(): Promise<void>
  /** SIGKILL, then the same registry again on the same port and storage */
  restart(): Promise<void>
}

export interface RegistryOptions {
  /** serve https with this certificate and key (PEM files) */
  tls?: { certificate: string; key: string }
  /** top-level YAML appended to the config (e.g. an `auth:` section) */
  extraConfig?: string
}

/** Starts a registry and waits until its port accepts connections. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<LocalRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'grail-registry-'))
  const port = await freePort()
  const host = `127.0.0.1:${port}`
  const config = join(dir, 'config.yml')
  await writeFile(
    config,
    `version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: ${host}
${opts.tls ? `  tls:\n    certificate: ${opts.tls.certificate}\n    key: ${opts.tls.key}\n` : ''}${opts.extraConfig ?? ''}`,
  )
  let out = ''
  let proc: ChildProcess
  let exited: Promise<void>
  const spawnOne = async () => {
    proc = spawn(DOCKER_REGISTRY, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] })
    const p = proc
    exited = new Promise<void>((r) => p.once('exit', () => r()))
    p.stdout?.on('data', (b: Buffer) => {
      out += b.toString()
    })
    p.stderr?.on('data', (b: Buffer) => {
      out += b.toString()
    })
    const deadline = Date.now() + 15_000
    for (;;) {
      if (p.exitCode !== null) throw new Error(`docker-registry exited: ${out}`)
      if (await accepts(port)) return
      if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${host}: ${out}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  /** stops exactly the process this helper started (SIGTERM, then SIGKILL after 5 s, or at once) */
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const p = proc
    if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
      process.kill(p.pid, signal)
      const t = setTimeout(
        () => p.pid !== undefined && p.exitCode === null && process.kill(p.pid, 'SIGKILL'),
        5000,
      )
      await exited
      clearTimeout(t)
    }
  }
  const stop = async () => {
    await kill()
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await spawnOne()
  } catch (err) {
    await stop()
    throw err
  }
  return {
    url: `${opts.tls ? 'https' : 'http'}://${host}`,
    host,
    dir,
    get proc() {
      return proc
    },
    log: () => out,
    stop,
    async crash() {
      await kill('SIGKILL')
    },
    async restart() {
      await kill('SIGKILL')
      await spawnOne()
    },
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1')
    sock.once('connect', () => {
      sock.destroy()
      resolve(true)
    })
    sock.once('error', () => resolve(false))
  })
}
