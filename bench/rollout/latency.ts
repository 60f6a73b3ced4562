import { join } from 'node:path'
import { runCommand } from '../../src/util/exec.js'
import { BENCH_DIR } from '../lib.js'

export interface LatencyRun {
  target: string
  concurrency: number
  samples: number[]
  errors: number
  wallMs: number
  p50: number
  p99: number
}

/** Nearest-rank percentile of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN
}

/**
 * Runs the load generator (latency-client.ts) in a child process against `url` and summarises its
 * per-request latencies.
 */
export async function measureLatency(o: {
  target: string
  url: string
  requests: number
  concurrency: number
  warmup: number
}): Promise<LatencyRun> {
  const client = join(BENCH_DIR, 'rollout', 'latency-client.ts')
  const arg = JSON.stringify({
    url: o.url,
    requests: o.requests,
    concurrency: o.concurrency,
    warmup: o.warmup,
  })
  const res = await runCommand({ file: process.execPath, args: ['--import', 'tsx', client, arg] })
  const out = JSON.parse(res.stdout.toString('utf8')) as { samples: number[]; errors: number; wallMs: number }
  if (out.samples.length === 0) throw new Error(`latency client got no successful answer from ${o.url}`)
  return {
    target: o.target,
    concurrency: o.concurrency,
    ...out,
    p50: percentile(out.samples, 50),
    p99: percentile(out.samples, 99),
  }
}
