import type { Ora } from 'ora'
import type { BuildEvent } from '../build/index.js'
import { formatMs, out, style } from './render.js'

/** Steps faster than this show no progress while they run, only their result line. */
const QUIET_MS = 1000
/** Without a terminal, a long step reports that it is still running this often. */
const HEARTBEAT_MS = 10_000

/**
 * Renders build events: one line per finished step; a spinner (on a terminal) or a periodic
 * "still running" line (in CI logs) for steps that take longer than a second; with `verbose`, the
 * output of run steps and mmdebstrap.
 */
export function buildProgress(opts: { verbose: boolean; enabled: boolean }): (e: BuildEvent) => void {
  if (!opts.enabled) return () => {}
  const tty = process.stderr.isTTY === true
  let spinner: Ora | undefined
  let timer: NodeJS.Timeout | undefined
  const stopTimers = () => {
    if (timer) clearTimeout(timer)
    timer = undefined
    spinner?.stop()
    spinner = undefined
  }
  return (e) => {
    switch (e.type) {
      case 'image-start':
        out(style.bold(`building ${e.image}`))
        break
      case 'step-start': {
        const text = `[${e.index + 1}/${e.total}] ${e.label}`
        const started = Date.now()
        if (tty) {
          timer = setTimeout(async () => {
            // loaded only when a step is slow enough to need it: ora and its dependencies cost ~15 ms
            const { default: ora } = await import('ora')
            if (timer) spinner = ora({ text, stream: process.stderr, isEnabled: true }).start()
          }, QUIET_MS).unref()
        } else {
          const beat = () => {
            out(style.dim(`  ${text} … ${formatMs(Date.now() - started)}`))
            timer = setTimeout(beat, HEARTBEAT_MS).unref()
          }
          timer = setTimeout(beat, HEARTBEAT_MS).unref()
        }
        break
      }
      case 'step-failed':
        stopTimers()
        out(`  [${e.index + 1}/${e.total}] ${e.label}  ${style.red(`failed after ${formatMs(e.ms)}`)}`)
        break
      case 'step-done':
        stopTimers()
        out(
          `  [${e.index + 1}/${e.total}] ${e.label}  ${e.cached ? style.dim('cached') : style.cyan(formatMs(e.ms))}`,
        )
        break
      case 'waiting':
        out(style.yellow(`${e.image}: waiting: ${e.held}`))
        break
      case 'log':
        if (opts.verbose) {
          if (spinner) spinner.clear()
          out(style.dim(`    | ${e.line}`))
          spinner?.render()
        }
        break
    }
  }
}
