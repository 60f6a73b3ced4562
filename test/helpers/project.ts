import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mountsUnder } from '../../src/util/mounts.js'
import { makeBusyboxRootfs } from './busybox-rootfs.js'

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const GRAIL_BIN = join(REPO, 'bin', 'grail.js')

/** Writes files (path → content) into a fresh temp dir and returns its path. */
export async function tempProject(files: Record<string, string>, prefix = 'grail-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  await writeFiles(dir, files)
  return dir
}

export async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, rel)), { recursive: true })
    await writeFile(join(dir, rel), content)
  }
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
}

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs the built `grail` CLI (dist/) as a user would, with no TTY, optionally under another umask. */
export function grail(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; umask?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // with a umask, a shell sets it and then execs node, as a user's login shell would
    const [file, argv] = opts.umask
      ? ['/bin/sh', ['-c', `umask ${opts.umask} && exec "$0" "$@"`, process.execPath, GRAIL_BIN, ...args]]
      : [process.execPath, [GRAIL_BIN, ...args]]
    const child = spawn(file, argv, {
      cwd: opts.cwd,
      env: { ...process.env, NO_COLOR: '1', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => {
      stdout += c
    })
    child.stderr.on('data', (c) => {
      stderr += c
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })
}

/** Parses the JSON a `--json` command printed, failing with its stderr when it did not succeed. */
export function parseJson<T>(res: CliResult): T {
  if (res.code !== 0) throw new Error(`grail exited ${res.code}\n${res.stderr}\n${res.stdout}`)
  return JSON.parse(res.stdout) as T
}

/** A temp project with the busybox rootfs its spec builds on (`rootfs.tar`, see busybox-rootfs.ts). */
export async function busyboxProject(files: Record<string, string>): Promise<string> {
  const dir = await tempProject(files)
  makeBusyboxRootfs(join(dir, 'rootfs.tar'))
  return dir
}

/**
 * Takes every environment of a test project down (the default one when none is named), checks that
 * nothing is left mounted under it, and removes it.
 */
export async function tearDown(dir: string, environments: string[] = []): Promise<void> {
  if (environments.length === 0) await grail(['down'], { cwd: dir })
  for (const env of environments) await grail(['down', env], { cwd: dir })
  assert.deepEqual(await mountsUnder(dir), [])
  await removeDir(dir)
}
