// How long the test harness's private dockerd takes to start and stop, and what one container costs on
// it: the fixed price every dockerd integration test pays.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeBusyboxRootfs } from '../../test/helpers/busybox-rootfs.js'
import { startDockerd } from '../../test/helpers/dockerd.js'
import { type Measurement, measure, ms, printTable, summarize, writeResults } from '../lib.js'

export async function run(): Promise<void> {
  const results: Record<string, Measurement> = {}

  const lifecycle = await measureLifecycle(5)
  results['dockerd start (until docker version answers)'] = lifecycle.start
  results['dockerd stop (idle)'] = lifecycle.stop

  const d = await startDockerd({ name: 'bench' })
  const work = await mkdtemp(join(tmpdir(), 'grail-bench-'))
  try {
    const tar = makeBusyboxRootfs(join(work, 'bb.tar'))
    await check(d.docker(['import', '-', 'bench/bb:1'], { input: await readFile(tar) }))
    results['docker run --rm busybox true'] = await measure(
      () => check(d.docker(['run', '--rm', '--network=host', 'bench/bb:1', '/bin/busybox', 'true'])),
      { runs: 10, warmup: 2 },
    )
  } finally {
    await d.stop()
    await rm(work, { recursive: true, force: true })
  }

  printTable(
    'private dockerd (test/helpers/dockerd.ts)',
    Object.entries(results).map(([step, m]) => ({
      step,
      runs: m.samples.length,
      median: ms(m.median),
      min: ms(m.min),
      p90: ms(m.p90),
    })),
  )
  const path = await writeResults('dockerd', results)
  console.log(`\nwrote ${path}`)
}

/** Start and stop are two halves of one cycle, so time both inside one loop rather than with measure(). */
async function measureLifecycle(runs: number): Promise<{ start: Measurement; stop: Measurement }> {
  const start: number[] = []
  const stop: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    const d = await startDockerd({ name: 'bench' })
    const t1 = performance.now()
    await d.stop()
    start.push(t1 - t0)
    stop.push(performance.now() - t1)
  }
  return { start: summarize(start), stop: summarize(stop) }
}

async function check(res: Promise<{ code: number; stderr: string }>): Promise<void> {
  const r = await res
  if (r.code !== 0) throw new Error(`docker failed (${r.code}): ${r.stderr.trim()}`)
}
