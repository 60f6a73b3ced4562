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
  proc: ChildProcess
  log: () => string
  stop(): Promise<void>
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
  const proc = spawn(DOCKER_REGISTRY, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout?.on('data', (b: Buffer) => {
    out += b.toString()
  })
  proc.stderr?.on('data', (b: Buffer) => {
    out += b.toString()
  })
  const exited = new Promise<void>((r) => proc.once('exit', () => r()))
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      process.kill(proc.pid, 'SIGTERM')
      const t = setTimeout(
        () => proc.pid !== undefined && proc.exitCode === null && process.kill(proc.pid, 'SIGKILL'),
        5000,
      )
      await exited
      clearTimeout(t)
    }
    await rm(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 15_000
  for (;;) {
    if (proc.exitCode !== null) {
      await stop()
      throw new Error(`docker-registry exited: ${out}`)
    }
    if (await accepts(port)) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`docker-registry did not answer on ${host}: ${out}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { url: `${opts.tls ? 'https' : 'http'}://${host}`, host, dir, proc, log: () => out, stop }
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
