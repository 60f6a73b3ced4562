import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'

export interface LoadReport {
  ok: number
  failed: number
  errors: string[]
  /** response bodies seen, in order (trimmed), for "which version answered" checks */
  bodies: string[]
  /** requests per second over the whole run: a figure for diagnostics, not a pass mark */
  rate: number
  /**
   * Of ten equal slices of the time between the start and `stop()`, how many saw a request complete: 10
   * means the load ran throughout what the test did meanwhile, however fast this machine is today.
   */
  slices: number
}

/**
 * Steady HTTP load on a loopback URL from `workers` concurrent loops until `stop()` is called, bounded by
 * `maxMs` in any case. Every non-2xx answer or connection error counts as failed. `stop()` goes on until
 * at least `minRequests` were answered, so that a slow machine still sends a real load.
 */
export function startLoad(
  url: string,
  opts: { workers?: number; maxMs?: number; minRequests?: number } = {},
): { stop: () => Promise<LoadReport> } {
  const report: LoadReport = { ok: 0, failed: 0, errors: [], bodies: [], rate: 0, slices: 0 }
  const started = Date.now()
  const deadline = started + (opts.maxMs ?? 120_000)
  const minRequests = opts.minRequests ?? 100
  const done: number[] = []
  let running = true
  const worker = async () => {
    while ((running || report.ok + report.failed < minRequests) && Date.now() < deadline) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5000) })
        const body = (await res.text()).trim()
        if (res.ok) {
          report.ok++
          report.bodies.push(body)
        } else {
          report.failed++
          report.errors.push(`HTTP ${res.status}`)
        }
      } catch (err) {
        report.failed++
        report.errors.push(String((err as Error).cause ?? err))
      }
      done.push(Date.now())
    }
  }
  const workers = Array.from({ length: opts.workers ?? 16 }, worker)
  return {
    stop: async () => {
      await sleep(200)
      const stopped = Date.now()
      running = false
      await Promise.all(workers)
      report.rate = (report.ok + report.failed) / ((Date.now() - started) / 1000)
      const width = Math.max(1, (stopped - started) / 10)
      report.slices = new Set(
        done.filter((t) => t < stopped).map((t) => Math.min(9, Math.floor((t - started) / width))),
      ).size
      return report
    },
  }
}

/** Asserts the load was real: at least 100 requests, answered throughout the operation it covered. */
export function assertSteady(report: LoadReport): void {
  const total = report.ok + report.failed
  assert.ok(total >= 100, `only ${total} requests were sent`)
  assert.equal(
    report.slices,
    10,
    `requests completed in only ${report.slices} of 10 slices of the run: the load stalled (${report.rate.toFixed(0)} req/s)`,
  )
}
