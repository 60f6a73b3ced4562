import { spawn } from 'node:child_process'
import { GrailError } from '../errors.js'

/** A command as data: built by pure functions, run by `runCommand`, compared by equality in tests. */
export interface Command {
  readonly file: string
  readonly args: readonly string[]
  readonly env?: Readonly<Record<string, string>>
  readonly cwd?: string
  /** Bytes written to the child's stdin, if any. */
  readonly input?: string | Buffer
}

export interface CommandResult {
  readonly code: number
  readonly signal: NodeJS.Signals | null
  readonly stdout: Buffer
  readonly stderr: Buffer
}

export interface RunOptions {
  /** Called with each chunk of output as it arrives (progress, logs). */
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void
  /** Resolve with the result instead of throwing when the exit code is not 0. */
  allowFailure?: boolean
  signal?: AbortSignal
}

/**
 * Runs a command without a shell (arguments are never interpreted), collecting its output. A non-zero exit
 * becomes a `GrailError` naming the program and the tail of its stderr unless `allowFailure` is set.
 */
export function runCommand(cmd: Command, opts: RunOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd.file, cmd.args as string[], {
      cwd: cmd.cwd,
      env: cmd.env ? { ...cmd.env } : process.env,
      stdio: [cmd.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      signal: opts.signal,
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout?.on('data', (c: Buffer) => {
      out.push(c)
      opts.onOutput?.(c, 'stdout')
    })
    child.stderr?.on('data', (c: Buffer) => {
      err.push(c)
      opts.onOutput?.(c, 'stderr')
    })
    child.on('error', (e) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(
          new GrailError('TOOL_MISSING', `${cmd.file} is not installed or not on PATH`, {
            hint: 'run ./scripts/setup to install the Debian packages Grail needs',
            cause: e,
          }),
        )
      } else reject(e)
    })
    if (cmd.input !== undefined && child.stdin) child.stdin.end(cmd.input)
    child.on('close', (code, signal) => {
      const result: CommandResult = {
        code: code ?? -1,
        signal,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err),
      }
      if (result.code !== 0 && !opts.allowFailure) {
        const tail = result.stderr.toString('utf8').trim().split('\n').slice(-8).join('\n')
        reject(
          new GrailError(
            'COMMAND_FAILED',
            `${cmd.file} ${cmd.args.slice(0, 3).join(' ')} exited with ${signal ?? code}`,
            {
              details: tail ? [tail] : [],
            },
          ),
        )
        return
      }
      resolve(result)
    })
  })
}
