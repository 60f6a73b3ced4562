import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

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
