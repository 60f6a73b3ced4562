// Entry of the proxy daemon: `node dist/proxy/daemon-main.js --control <sock> --listen <host>:<port>
// --mode http|tcp --state <json> [--log <file>] [--drain-timeout <ms>] [--inherit-listen ipc]`. Run by
// its keeper (keeper-main, started detached by `ensureProxy`) so the service's proxy outlives the CLI and
// comes back when killed; see supervisor.ts and keeper.ts.
import { once } from 'node:events'
import { pino } from 'pino'
import { GrailError } from '../errors.js'
import { runDaemon } from './daemon.js'
import { DaemonExit, parseDaemonArgs } from './daemon-protocol.js'
import type { KeeperMessage } from './keeper.js'
import { isAlive } from './process.js'

// Async destination: a log line is a buffered write, never a sync syscall on the proxy's event loop.
const destination = pino.destination({ dest: logFileArg() ?? 2, sync: false, mkdir: true })
const logger = pino({ base: { pid: process.pid } }, destination)

function logFileArg(): string | undefined {
  const i = process.argv.indexOf('--log')
  return i >= 0 ? process.argv[i + 1] : undefined
}

function exit(code: number): never {
  try {
    destination.flushSync()
  } catch {
    // The destination may not be open yet (a failure right at startup); stderr still has the message.
  }
  process.exit(code)
}

function fail(err: unknown, fallback: number): never {
  const exitCode = (err as { exitCode?: number }).exitCode ?? fallback
  const body =
    err instanceof GrailError
      ? { code: err.code, hint: err.hint, cause: (err.cause as Error | undefined)?.message }
      : { stack: err instanceof Error ? err.stack : String(err) }
  const message = err instanceof Error ? err.message : String(err)
  logger.fatal({ event: 'fatal', exitCode, ...body }, message)
  process.stderr.write(`grail proxy daemon: ${message}\n`)
  exit(exitCode)
}

async function main(): Promise<void> {
  // Registered in the tick the destination was created in, so its 'ready' cannot be missed.
  await once(destination, 'ready')
  let args: ReturnType<typeof parseDaemonArgs>
  try {
    args = parseDaemonArgs(process.argv.slice(2))
  } catch (err) {
    fail(err, DaemonExit.usage)
  }
  const log = (event: string, data: object): void => logger.info({ event, ...data })
  const listenHandle = args.inheritListen ? await handleFromKeeper() : undefined
  // The keeper is the parent. Once it is killed it may linger as a zombie (its parent has not reaped it)
  // with this daemon still its child for a moment, and IPC notices later still: check all three.
  const keeper = process.ppid
  const supervised = async (): Promise<number | null> =>
    process.connected && process.ppid === keeper && (await isAlive(keeper)) ? keeper : null
  let daemon: Awaited<ReturnType<typeof runDaemon>>
  try {
    daemon = await runDaemon(args, log, { listenHandle, supervisor: supervised })
  } catch (err) {
    fail(err, DaemonExit.internal)
  }
  if (process.send !== undefined) {
    // The keeper holds the listening socket from now on, so a restarted daemon serves on the same one.
    if (listenHandle === undefined)
      process.send({ type: 'listen-handle' } satisfies KeeperMessage, daemon.proxy.listenHandle as never)
    process.send({ type: 'ready' } satisfies KeeperMessage)
    // A dead keeper is no reason to drop the service's traffic; the next grail command restarts the pair.
    process.on('disconnect', () => log('keeper-gone', { keeper: process.ppid }))
  }
  const onSignal = (signal: string): void => {
    void daemon.shutdown(signal)
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  // Detached from any terminal: a hangup is not a reason to drop the service's traffic.
  process.on('SIGHUP', () => logger.info({ event: 'sighup' }))
  exit(await daemon.done)
}

/** The listening socket the keeper passes to a restarted daemon; fails after 5 s without one. */
function handleFromKeeper(): Promise<object> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no listening socket from the keeper within 5 s')), 5_000)
    process.on('message', (m: KeeperMessage, handle: unknown) => {
      if (m?.type !== 'listen-handle' || typeof handle !== 'object' || handle === null) return
      clearTimeout(timer)
      resolve(handle)
    })
  })
}

process.on('uncaughtException', (err) => fail(err, DaemonExit.internal))
main().catch((err: unknown) => fail(err, DaemonExit.internal))
