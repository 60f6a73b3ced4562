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

/**
 * Measures several targets in alternating rounds (A B, B A, A B, ...) and pools each target's samples, so
 * a burst of noise on the machine falls on both sides instead of on whichever target ran at that moment.
 */
export async function measureInterleaved(o: {
  targets: ReadonlyArray<readonly [target: string, url: string]>
  requests: number
  rounds: number
  concurrency: number
  warmup: number
}): Promise<LatencyRun[]> {
  const pooled = new Map<string, { samples: number[]; errors: number; wallMs: number }>()
  for (const [target] of o.targets) pooled.set(target, { samples: [], errors: 0, wallMs: 0 })
  const perRound = Math.ceil(o.requests / o.rounds)
  for (let round = 0; round < o.rounds; round++) {
    const order = round % 2 === 0 ? o.targets : [...o.targets].reverse()
    for (const [target, url] of order) {
      const run = await measureLatency({
        target,
        url,
        requests: perRound,
        concurrency: o.concurrency,
        warmup: round === 0 ? o.warmup : Math.ceil(o.warmup / 10),
      })
      const acc = pooled.get(target) as { samples: number[]; errors: number; wallMs: number }
      acc.samples.push(...run.samples)
      acc.errors += run.errors
      acc.wallMs += run.wallMs
    }
  }
  return o.targets.map(([target]) => {
    const acc = pooled.get(target) as { samples: number[]; errors: number; wallMs: number }
    return {
      target,
      concurrency: o.concurrency,
      ...acc,
      p50: percentile(acc.samples, 50),
      p99: percentile(acc.samples, 99),
    }
  })
}
