import { type ChildProcess, spawn } from 'node:child_process'
import { writeAtomic } from '../util/write-atomic.js'
import type { ProxyLog } from './types.js'

/** How the keeper runs its daemon. */
export interface KeeperOptions {
  /** node arguments that start the daemon entry (daemon-main), without the daemon's own flags */
  readonly daemonCommand: readonly string[]
  /** the daemon's flags (`daemonArgv`); restarts add `--inherit-listen ipc` */
  readonly daemonArgs: readonly string[]
  /** where the pid of the running daemon is written, each time one starts */
  readonly pidFile: string
  readonly log: ProxyLog
}

/** Messages between the keeper and its daemon over the IPC channel. */
export type KeeperMessage = { type: 'ready' } | { type: 'listen-handle' }

/** A daemon that lived less than this before it died counts as a quick failure and the next start waits. */
const QUICK_FAILURE_MS = 10_000
const MAX_BACKOFF_MS = 5_000
/** Consecutive quick failures after which the keeper stops trying and exits (the next grail command retries). */
const MAX_QUICK_FAILURES = 8

/**
 * Runs one proxy daemon as a child and restarts it at once when it dies by a signal or a crash, so a
 * `kill -9` of the daemon costs only the requests it had in flight. The first daemon binds the public
 * port and passes the listening socket to the keeper, which holds it and hands it to every restarted
 * daemon: the port never closes, and connections made while no daemon runs wait in the kernel's accept
 * queue instead of being refused. A clean exit (code 0: a control `shutdown` or SIGTERM) ends the keeper;
 * so does a failure of the very first start, with the daemon's exit code, which `ensureProxy` reads.
 * Resolves with the keeper's exit code.
 */
export function runKeeper(opts: KeeperOptions): Promise<number> {
  const { log } = opts
  let held: object | undefined
  let child: ChildProcess | undefined
  let stopping = false
  let everReady = false
  let quickFailures = 0
  let finish: (code: number) => void = () => {}
  const done = new Promise<number>((resolve) => {
    finish = resolve
  })

  const start = (): void => {
    const inherit = held !== undefined
    const argv = [...opts.daemonCommand, ...opts.daemonArgs, ...(inherit ? ['--inherit-listen', 'ipc'] : [])]
    const startedAt = Date.now()
    const c = spawn(process.execPath, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: '/' })
    child = c
    c.on('error', (err) => log('keeper-spawn-error', { error: err.message }))
    if (c.pid !== undefined) void writePid(opts.pidFile, c.pid)
    c.on('message', (m: KeeperMessage, handle: unknown) => {
      if (m?.type === 'listen-handle' && typeof handle === 'object' && handle !== null) held = handle
      if (m?.type === 'ready') {
        everReady = true
        log('daemon-ready', { daemon: c.pid, restart: inherit })
      }
    })
    if (inherit && held !== undefined)
      c.send({ type: 'listen-handle' } satisfies KeeperMessage, held as never)
    // 'close', not 'exit': it comes after every message of the daemon was read, so a daemon killed right
    // after it passed the listening socket is never mistaken for one that failed to start
    c.on('close', (code, sig) => {
      child = undefined
      log('daemon-exit', { daemon: c.pid, code, signal: sig })
      if (stopping || code === 0) return finish(code ?? 0)
      // the first start failed (port in use, damaged state): nothing served yet, report it to ensureProxy
      if (!everReady || held === undefined) return finish(code ?? 1)
      quickFailures = Date.now() - startedAt < QUICK_FAILURE_MS ? quickFailures + 1 : 0
      if (quickFailures > MAX_QUICK_FAILURES) {
        log('keeper-give-up', { failures: quickFailures })
        return finish(1)
      }
      const delay = quickFailures <= 1 ? 0 : Math.min(MAX_BACKOFF_MS, 100 * 2 ** (quickFailures - 2))
      log('daemon-restart', { after: code === null ? sig : `code ${code}`, delayMs: delay })
      setTimeout(() => (stopping ? finish(0) : start()), delay)
    })
  }

  const stop = (sig: string): void => {
    log('keeper-stop', { signal: sig })
    stopping = true
    if (child === undefined) finish(0)
    else child.kill('SIGTERM')
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // Detached from any terminal: a hangup is not a reason to drop the service's traffic.
  process.on('SIGHUP', () => log('sighup', {}))
  start()
  return done
}

async function writePid(file: string, pid: number): Promise<void> {
  await writeAtomic(file, `${pid}\n`)
}
