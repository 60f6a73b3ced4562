import { mkdir, rename, writeFile } from 'node:fs/promises'
import { arch, cpus, freemem, hostname, platform, release, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url))
export const RESULTS_DIR = join(BENCH_DIR, 'results')

export interface MeasureOptions {
  /** Timed runs; default 5. */
  runs?: number
  /** Untimed runs first, to fill caches and JIT; default 1. */
  warmup?: number
}

export interface Measurement {
  /** Wall-clock duration of each timed run, in milliseconds, in run order. */
  samples: number[]
  median: number
  min: number
  max: number
  p90: number
}

/**
 * Runs `fn` `warmup` times untimed, then `runs` times timed one after another, and summarises the
 * wall-clock durations. `fn` receives the run index (negative for warmups) so it can use fresh names.
 */
export async function measure(fn: (i: number) => unknown, opts: MeasureOptions = {}): Promise<Measurement> {
  const runs = opts.runs ?? 5
  const warmup = opts.warmup ?? 1
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`measure: runs must be a positive integer, got ${runs}`)
  for (let i = -warmup; i < 0; i++) await fn(i)
  const samples: number[] = []
  for (let i = 0; i < runs; i++) {
    const start = performance.now()
    await fn(i)
    samples.push(performance.now() - start)
  }
  return summarize(samples)
}

/** Median, min, max and nearest-rank p90 of a non-empty list of samples, rounded to microseconds. */
export function summarize(raw: readonly number[]): Measurement {
  if (raw.length === 0) throw new Error('summarize: no samples')
  const samples = raw.map((v) => Math.round(v * 1000) / 1000)
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (i: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, i))] as number
  const mid = sorted.length / 2
  const median = sorted.length % 2 === 1 ? at(Math.floor(mid)) : (at(mid - 1) + at(mid)) / 2
  return {
    samples,
    median,
    min: at(0),
    max: at(sorted.length - 1),
    p90: at(Math.ceil(0.9 * sorted.length) - 1),
  }
}

/** Formats milliseconds for a table cell: `0.42 ms`, `12.3 ms`, `1.25 s`. */
export function ms(value: number): string {
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`
  return value >= 10 ? `${value.toFixed(1)} ms` : `${value.toFixed(2)} ms`
}

/**
 * Prints rows as an aligned text table under a title. Columns are the union of the rows' keys in first-seen
 * order; columns holding only numbers are right-aligned, the rest left-aligned; missing cells are blank.
 */
export function printTable(title: string, rows: readonly Record<string, string | number>[]): void {
  console.log(formatTable(title, rows))
}

export function formatTable(title: string, rows: readonly Record<string, string | number>[]): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))]
  const cell = (v: string | number | undefined): string =>
    v === undefined ? '' : typeof v === 'number' ? String(Math.round(v * 100) / 100) : v
  const numeric = columns.map((c) => rows.every((r) => r[c] === undefined || typeof r[c] === 'number'))
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)))
  const line = (cells: string[]): string =>
    cells
      .map((s, i) => (numeric[i] ? s.padStart(widths[i] as number) : s.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd()
  const rule = widths.map((w) => '-'.repeat(w)).join('  ')
  return [`\n${title}`, line(columns), rule, ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join(
    '\n',
  )
}

/** Where and on what a benchmark ran, stored next to its numbers so results stay comparable. */
export function machineInfo(): Record<string, unknown> {
  const cpu = cpus()
  return {
    hostname: hostname(),
    platform: platform(),
    arch: arch(),
    kernel: release(),
    cpus: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
  }
}

/**
 * Writes `data` with the date, Node version and machine info to `bench/results/<name>.json` (via a temp
 * file and a rename, so an interrupted run never leaves half a file). Returns the path.
 */
export async function writeResults(name: string, data: unknown): Promise<string> {
  if (!/^[\w.-]+$/.test(name)) throw new Error(`writeResults: "${name}" is not a plain file name`)
  await mkdir(RESULTS_DIR, { recursive: true })
  const path = join(RESULTS_DIR, `${name}.json`)
  const doc = { name, date: new Date().toISOString(), node: process.version, machine: machineInfo(), data }
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, `${JSON.stringify(doc, null, 2)}\n`)
  await rename(tmp, path)
  return path
}
