import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { GRAIL_BIN } from './project.js'

/** A `grail serve` started by a test: its pid, its JSON log lines so far, its URL once it listens. */
export interface ServeProcess {
  child: ChildProcess
  pid: number
  url: string
  /** every log line the daemon printed, parsed */
  lines: Array<Record<string, unknown>>
  /** what it printed on stderr */
  stderr: () => string
  /** waits for a log line that `match` accepts (default 15 s) */
  waitForLine(
    match: (l: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>
  /** SIGTERM (or the given signal) and the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/**
 * Starts `grail serve ARGS` in `dir` (on an ephemeral loopback port unless ARGS give --listen) and
 * resolves once it listens.
 */
export async function startServe(
  dir: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<ServeProcess> {
  const argv = args.includes('--listen') ? args : [...args, '--listen', '127.0.0.1:0']
  const child = spawn(process.execPath, [GRAIL_BIN, 'serve', ...argv], {
    cwd: dir,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: Array<Record<string, unknown>> = []
  const waiters = new Set<() => void>()
  let rest = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    rest += chunk.toString('utf8')
    const parts = rest.split('\n')
    rest = parts.pop() ?? ''
    for (const p of parts) {
      if (p.trim() === '') continue
      try {
        lines.push(JSON.parse(p) as Record<string, unknown>)
      } catch {
        lines.push({ msg: p, unparsed: true })
      }
    }
    for (const w of waiters) w()
  })
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString('utf8')
  })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const waitForLine = (match: (l: Record<string, unknown>) => boolean, timeoutMs = 15_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const hit = lines.find(match)
        if (!hit) return false
        cleanup()
        resolve(hit)
        return true
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(
          new Error(
            `grail serve: no matching log line in ${timeoutMs} ms\n${lines.map((l) => JSON.stringify(l)).join('\n')}\n${stderr}`,
          ),
        )
      }, timeoutMs)
      const onExit = () => {
        cleanup()
        reject(new Error(`grail serve exited\n${lines.map((l) => JSON.stringify(l)).join('\n')}\n${stderr}`))
      }
      const cleanup = () => {
        clearTimeout(timer)
        waiters.delete(waiter)
        child.off('exit', onExit)
      }
      const waiter = () => {
        check()
      }
      if (check()) return
      waiters.add(waiter)
      child.once('exit', onExit)
    })
  const listening = await waitForLine((l) => l.msg === 'listening')
  return {
    child,
    pid: child.pid as number,
    url: String(listening.url),
    lines,
    stderr: () => stderr,
    waitForLine,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill(signal)
      const [code] = await exited
      return code
    },
  }
}
