import { setTimeout as sleep } from 'node:timers/promises'

export interface LoadReport {
  ok: number
  failed: number
  errors: string[]
  /** response bodies seen, in order (trimmed), for "which version answered" checks */
  bodies: string[]
  rate: number
}

/**
 * Steady HTTP load on a loopback URL from `workers` concurrent loops until `stop()` is called, bounded by
 * `maxMs` in any case. Every non-2xx answer or connection error counts as failed.
 */
export function startLoad(
  url: string,
  opts: { workers?: number; maxMs?: number } = {},
): { stop: () => Promise<LoadReport> } {
  const report: LoadReport = { ok: 0, failed: 0, errors: [], bodies: [], rate: 0 }
  const started = Date.now()
  const deadline = started + (opts.maxMs ?? 120_000)
  let running = true
  const worker = async () => {
    while (running && Date.now() < deadline) {
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
    }
  }
  const workers = Array.from({ length: opts.workers ?? 16 }, worker)
  return {
    stop: async () => {
      await sleep(200)
      running = false
      await Promise.all(workers)
      report.rate = (report.ok + report.failed) / ((Date.now() - started) / 1000)
      return report
    },
  }
}
