// How long the test harness's private dockerd takes to start and stop, and what one container costs on
// it: the fixed price every dockerd integration test pays.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeBusyboxRootfs } from '../../test/helpers/busybox-rootfs.js'
import { type Dockerd, startDockerd } from '../../test/helpers/dockerd.js'
import { type Measurement, measure, ms, printTable, writeResults } from '../lib.js'

export async function run(): Promise<void> {
  const results: Record<string, Measurement> = {}

  let pending: Dockerd | undefined
  results['dockerd start (until docker version answers)'] = await measure(
    async () => {
      pending = await startDockerd({ name: 'bench' })
    },
    { runs: 5, warmup: 0 },
  ).finally(() => pending?.stop())
  // Each start is paired with an untimed stop above; time stops separately against fresh daemons.
  results['dockerd stop (idle)'] = await measureStops(5)

  const d = await startDockerd({ name: 'bench' })
  const work = await mkdtemp(join(tmpdir(), 'grail-bench-'))
  try {
    const tar = makeBusyboxRootfs(join(work, 'bb.tar'))
    await check(d.docker(['import', '-', 'bench/bb:1'], { input: await readFile(tar) }))
    results['docker run --rm busybox true'] = await measure(
      () => check(d.docker(['run', '--rm', '--network=host', 'bench/bb:1', '/bin/true'])),
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

async function measureStops(runs: number): Promise<Measurement> {
  const daemons: Dockerd[] = []
  try {
    for (let i = 0; i < runs; i++) daemons.push(await startDockerd({ name: 'bench' }))
    const queue = [...daemons]
    return await measure(() => (queue.shift() as Dockerd).stop(), { runs, warmup: 0 })
  } finally {
    await Promise.all(daemons.map((d) => d.stop()))
  }
}

async function check(res: Promise<{ code: number; stderr: string }>): Promise<void> {
  const r = await res
  if (r.code !== 0) throw new Error(`docker failed (${r.code}): ${r.stderr.trim()}`)
}
