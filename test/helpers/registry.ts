// Debian's docker-registry (distribution) on 127.0.0.1, started by a test: plain http, filesystem storage in
// a temp dir, deletes enabled. The pid is kept and exactly that process is stopped.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
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

/** Starts a registry and waits until GET /v2/ answers; `extraConfig` is appended to its YAML config. */
export async function startRegistry(extraConfig = ''): Promise<LocalRegistry> {
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
${extraConfig}`,
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
    try {
      const res = await fetch(`http://${host}/v2/`)
      await res.arrayBuffer()
      if (res.status === 200 || res.status === 401) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`docker-registry did not answer on ${host}: ${out}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { url: `http://${host}`, host, dir, proc, log: () => out, stop }
}
