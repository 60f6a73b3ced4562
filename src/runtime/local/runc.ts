import { spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { GrailError, isErrno } from '../../errors.js'
import type { Command } from '../../util/exec.js'
import { runCommand } from '../../util/exec.js'
import { PRIVATE_FILE_MODE } from '../../util/private-fs.js'

// runc argv for long-running instances, as data. Every command names Grail's own state root, never the
// host's default (/run/runc), so Grail sees and touches only its own containers.

/** `runc create`: sets the container up (namespaces, mounts) with its init waiting for `start`. */
export function runcCreateCommand(opts: { runcRoot: string; bundle: string; id: string }): Command {
  return { file: 'runc', args: ['--root', opts.runcRoot, 'create', '--bundle', opts.bundle, opts.id] }
}

export function runcStartCommand(opts: { runcRoot: string; id: string }): Command {
  return { file: 'runc', args: ['--root', opts.runcRoot, 'start', opts.id] }
}

export function runcKillCommand(opts: { runcRoot: string; id: string; signal: 'TERM' | 'KILL' }): Command {
  return { file: 'runc', args: ['--root', opts.runcRoot, 'kill', opts.id, opts.signal] }
}

export function runcListCommand(opts: { runcRoot: string }): Command {
  return { file: 'runc', args: ['--root', opts.runcRoot, 'list', '--format', 'json'] }
}

/** `runc exec`: runs argv in the container with the process settings (env, cwd, user) of its config. */
export function runcExecCommand(opts: { runcRoot: string; id: string; argv: readonly string[] }): Command {
  return { file: 'runc', args: ['--root', opts.runcRoot, 'exec', opts.id, ...opts.argv] }
}

/** One container as `runc list --format json` reports it. */
export interface RuncContainer {
  id: string
  pid: number
  status: string
  bundle: string
  created: string
  annotations?: Record<string, string>
}

/** Parses `runc list --format json` (which prints `null` when there are no containers). */
export function parseRuncList(stdout: string): RuncContainer[] {
  const text = stdout.trim()
  if (text === '' || text === 'null') return []
  const parsed = JSON.parse(text) as RuncContainer[] | null
  return parsed ?? []
}

/** Every container under Grail's runc root, by id. */
export async function listContainers(runcRoot: string): Promise<Map<string, RuncContainer>> {
  // `runc list` fails when a container's state dir vanishes while it reads them (a parallel delete,
  // as `down` runs them): that is a race, not an error, and the next listing no longer sees it
  for (let attempt = 1; ; attempt++) {
    const res = await runCommand(runcListCommand({ runcRoot }), { allowFailure: attempt < 10 })
    if (res.code === 0) return new Map(parseRuncList(res.stdout.toString('utf8')).map((c) => [c.id, c]))
    if (!/no such file or directory/.test(res.stderr.toString('utf8'))) {
      await runCommand(runcListCommand({ runcRoot }))
    }
  }
}

/**
 * Runs `runc create` with the container's stdout and stderr wired to the instance's log files (appended,
 * no terminal, stdin from /dev/null): the container keeps those fds after runc exits, so it outlives this
 * process and logs without anyone reading pipes. runc's own errors land in the stderr log too.
 */
export async function runDetached(cmd: Command, logs: { stdout: string; stderr: string }): Promise<void> {
  // the app's output may print its config: owner-only, like the rest of the bundle
  const out = openSync(logs.stdout, 'a', PRIVATE_FILE_MODE)
  const err = openSync(logs.stderr, 'a', PRIVATE_FILE_MODE)
  try {
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(cmd.file, cmd.args as string[], { stdio: ['ignore', out, err] })
      child.on('error', (e) =>
        reject(
          isErrno(e, 'ENOENT')
            ? new GrailError('TOOL_MISSING', `${cmd.file} is not installed or not on PATH`, {
                hint: 'run ./scripts/setup to install the Debian packages Grail needs',
                cause: e,
              })
            : e,
        ),
      )
      child.on('exit', (c, signal) => resolve(c ?? (signal ? -1 : 0)))
    })
    if (code !== 0) {
      // the log goes with the instance when the failed create is undone: its tail goes into the error
      const tail = readFileSync(logs.stderr, 'utf8').trim().split('\n').slice(-5)
      throw new GrailError(
        'COMMAND_FAILED',
        `${cmd.file} ${cmd.args.slice(2, 3).join(' ')} exited with ${code}`,
        { details: tail },
      )
    }
  } finally {
    closeSync(out)
    closeSync(err)
  }
}
