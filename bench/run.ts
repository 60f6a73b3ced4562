// Runs benchmarks: `node --import tsx bench/run.ts [name...]` imports bench/<name>/index.ts and awaits its
// `run()`; with no names, every bench/<dir>/index.ts in name order. Exits 1 if any benchmark threw.
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BENCH_DIR } from './lib.js'

interface BenchModule {
  run(): Promise<void>
}

async function listBenchmarks(): Promise<string[]> {
  const names: string[] = []
  for (const entry of await readdir(BENCH_DIR, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === 'results') continue
    try {
      await stat(join(BENCH_DIR, entry.name, 'index.ts'))
      names.push(entry.name)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  return names.sort()
}

async function main(requested: string[]): Promise<number> {
  const available = await listBenchmarks()
  const unknown = requested.filter((n) => !available.includes(n))
  if (unknown.length > 0) {
    console.error(`unknown benchmark ${unknown.join(', ')}; available: ${available.join(', ') || '(none)'}`)
    return 2
  }
  const names = requested.length > 0 ? requested : available
  if (names.length === 0) {
    console.error(`no benchmarks: add bench/<name>/index.ts exporting run()`)
    return 2
  }
  let failed = 0
  for (const name of names) {
    const mod = (await import(pathToFileURL(join(BENCH_DIR, name, 'index.ts')).href)) as Partial<BenchModule>
    if (typeof mod.run !== 'function') {
      console.error(`bench/${name}/index.ts does not export run()`)
      failed++
      continue
    }
    console.log(`\n== ${name}`)
    const start = performance.now()
    try {
      await mod.run()
      console.log(`== ${name} done in ${((performance.now() - start) / 1000).toFixed(1)} s`)
    } catch (err) {
      failed++
      console.error(`== ${name} failed:`, err)
    }
  }
  return failed > 0 ? 1 : 0
}

process.exitCode = await main(process.argv.slice(2))
