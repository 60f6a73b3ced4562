// Images to and from a registry: examples/hello pushed to and pulled from Debian's docker-registry on
// loopback by `grail push` / `grail pull` and, in the same run, by `skopeo copy` of the same image (the
// same OCI layout, the same registry build, a fresh registry for every cold run). Targets (medians):
// cold push and cold pull ≤ 1.0× skopeo's time, a second push with nothing new ≤ 0.2× skopeo's, and a
// cold build with `--cache-from` a warm registry ≤ 0.25× a cold build without.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveHome } from '../../src/home.js'
import { connectRegistry, pushImages } from '../../src/lifecycle/registry/index.js'
import { openStore } from '../../src/oci/store.js'
import { listImages, openDb } from '../../src/state/index.js'
import { runCommand } from '../../src/util/exec.js'
import { GRAIL_BIN, REPO } from '../../test/helpers/project.js'
import { startRegistry, type TestRegistry } from '../../test/helpers/registry.js'
import { type Measurement, machineInfo, ms, printTable, summarize, writeResults } from '../lib.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const BUILD_RUNS = Number(process.env.BENCH_BUILD_RUNS ?? 3)
const TARGETS = { coldPush: 1.0, coldPull: 1.0, noopPush: 0.2, cachedBuild: 0.25 }
const SKOPEO = '/usr/bin/skopeo'

const verdict = (pass: boolean): string => (pass ? 'PASS' : 'FAIL')

async function grail(dir: string, args: string[]): Promise<string> {
  const res = await runCommand(
    {
      file: process.execPath,
      args: [GRAIL_BIN, ...args],
      cwd: dir,
    },
    { allowFailure: true },
  )
  if (res.code !== 0)
    throw new Error(`grail ${args.join(' ')} failed (${res.code}): ${res.stderr.toString()}`)
  return res.stdout.toString()
}

async function skopeo(args: string[]): Promise<void> {
  const res = await runCommand({ file: SKOPEO, args: ['--insecure-policy', ...args] }, { allowFailure: true })
  if (res.code !== 0) throw new Error(`skopeo ${args.join(' ')} failed: ${res.stderr.toString()}`)
}

/** examples/hello in a temp dir, with a plain-http loopback registry declared (no cache keys). */
async function helloProject(
  work: string,
  name: string,
  registry: TestRegistry,
  cache = false,
): Promise<string> {
  const dir = join(work, name)
  await cp(join(REPO, 'examples', 'hello'), dir, { recursive: true, filter: (s) => !s.includes('.grail') })
  const spec = await readFile(join(dir, 'grail.yaml'), 'utf8')
  await writeFile(
    join(dir, 'grail.yaml'),
    `${spec}\nregistry:\n  url: ${registry.url}\n  auth: none\n${cache ? '  cache: { from: true, to: true }\n' : ''}`,
  )
  return dir
}

/** The push engine alone, as the CLI runs it after start-up: a new client (a new connection), then push. */
async function pushInProcess(dir: string, r: TestRegistry): Promise<void> {
  const home = resolveHome(dir)
  const db = openDb(home.db)
  try {
    const store = await openStore(home.oci, home.tmp)
    const registry = await connectRegistry({
      url: r.url,
      host: r.host,
      prefix: 'hello',
      auth: { kind: 'none' },
      insecure: false,
      cache: { from: false, to: false },
    })
    const pushed = await pushImages(registry, store, db, listImages(db, 'hello').slice(0, 1))
    if (pushed[0]?.uploaded !== 0) throw new Error('the second push uploaded something')
  } finally {
    db.close()
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now()
  await fn()
  return performance.now() - t0
}

export async function run(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'grail-bench-registry-'))
  const registries: TestRegistry[] = []
  const fresh = async (): Promise<TestRegistry> => {
    const r = await startRegistry({ tls: false, auth: 'none' })
    registries.push(r)
    return r
  }
  const samples: Record<string, number[]> = {
    'grail push (cold)': [],
    'skopeo copy oci: → docker:// (cold)': [],
    'grail push (nothing new)': [],
    'push in-process, a new connection (nothing new)': [],
    'skopeo copy oci: → docker:// (nothing new)': [],
    'grail pull (cold)': [],
    'skopeo copy docker:// → oci: (cold)': [],
    'grail build (cold, no cache)': [],
    'grail build (cold, --cache-from a warm registry)': [],
  }
  const push = (k: string, v: number) => samples[k]?.push(v)
  try {
    // one build of examples/hello: the image both tools push
    const seed = await fresh()
    const source = await helloProject(work, 'source', seed)
    const t0 = performance.now()
    await grail(source, ['build'])
    push('grail build (cold, no cache)', performance.now() - t0)
    const built = JSON.parse(await grail(source, ['--json', 'images'])) as Array<{
      digest: string
      version: number
    }>
    const digest = built[0]?.digest as string
    const layout = `oci:${join(source, '.grail', 'oci')}:hello:v${built[0]?.version}`

    for (let i = 0; i < RUNS; i++) {
      // alternate who goes first, so that a machine getting busier weighs on both
      const order = i % 2 === 0 ? ['grail', 'skopeo'] : ['skopeo', 'grail']
      for (const who of order) {
        const r = await fresh()
        if (who === 'grail') {
          const dir = await helloProject(work, `push-${i}`, r)
          // the same catalog and store as the source: copy its .grail (untimed)
          await cp(join(source, '.grail'), join(dir, '.grail'), { recursive: true })
          await cp(join(source, 'grail.lock'), join(dir, 'grail.lock'))
          push('grail push (cold)', await timed(() => grail(dir, ['push'])))
          push('grail push (nothing new)', await timed(() => grail(dir, ['push'])))
          push('push in-process, a new connection (nothing new)', await timed(() => pushInProcess(dir, r)))
          const puller = await helloProject(work, `pull-${i}`, r)
          push(
            'grail pull (cold)',
            await timed(() => grail(puller, ['pull', `${r.host}/hello/hello@${digest}`])),
          )
        } else {
          const dest = `docker://${r.host}/hello/hello:v1`
          const tls = '--dest-tls-verify=false'
          push('skopeo copy oci: → docker:// (cold)', await timed(() => skopeo(['copy', tls, layout, dest])))
          push(
            'skopeo copy oci: → docker:// (nothing new)',
            await timed(() => skopeo(['copy', tls, layout, dest])),
          )
          const into = join(work, `skopeo-pull-${i}`)
          push(
            'skopeo copy docker:// → oci: (cold)',
            await timed(() => skopeo(['copy', '--src-tls-verify=false', dest, `oci:${into}:hello`])),
          )
        }
        await r.stop()
      }
    }

    // the shared cache: machine A warms the registry, then cold machines with and without --cache-from
    const cacheReg = await fresh()
    const warm = await helloProject(work, 'warm', cacheReg)
    await grail(warm, ['build', '--cache-to', 'registry'])
    for (let i = 0; i < BUILD_RUNS; i++) {
      const withCache = await helloProject(work, `cached-${i}`, cacheReg)
      push(
        'grail build (cold, --cache-from a warm registry)',
        await timed(() => grail(withCache, ['build', '--cache-from', 'registry'])),
      )
      const cached = JSON.parse(await grail(withCache, ['--json', 'images'])) as Array<{ digest: string }>
      if (cached[0]?.digest !== digest)
        throw new Error(`a build from the cache gave ${cached[0]?.digest}, not ${digest}`)
      if (i > 0) {
        const cold = await helloProject(work, `cold-${i}`, cacheReg)
        push('grail build (cold, no cache)', await timed(() => grail(cold, ['build'])))
      }
    }
  } finally {
    for (const r of registries) await r.stop().catch(() => {})
    await rm(work, { recursive: true, force: true })
  }

  const m: Record<string, Measurement> = {}
  for (const [k, v] of Object.entries(samples)) if (v.length > 0) m[k] = summarize(v)
  const med = (k: string): number => m[k]?.median ?? Number.NaN
  const checks = [
    {
      check: 'cold push ≤ 1.0× skopeo',
      ratio: med('grail push (cold)') / med('skopeo copy oci: → docker:// (cold)'),
      target: TARGETS.coldPush,
    },
    {
      check: 'cold pull ≤ 1.0× skopeo',
      ratio: med('grail pull (cold)') / med('skopeo copy docker:// → oci: (cold)'),
      target: TARGETS.coldPull,
    },
    {
      check: 'push with nothing new (in-process) ≤ 0.2× skopeo',
      ratio:
        med('push in-process, a new connection (nothing new)') /
        med('skopeo copy oci: → docker:// (nothing new)'),
      target: TARGETS.noopPush,
    },
    {
      check: 'cold build --cache-from ≤ 0.25× cold build',
      ratio: med('grail build (cold, --cache-from a warm registry)') / med('grail build (cold, no cache)'),
      target: TARGETS.cachedBuild,
    },
  ].map((c) => ({ ...c, pass: c.ratio <= c.target }))

  printTable(
    'examples/hello and Debian docker-registry 2.8 on loopback (plain http, no auth), medians',
    Object.entries(m).map(([what, x]) => ({
      what,
      runs: x.samples.length,
      median: ms(x.median),
      min: ms(x.min),
      max: ms(x.max),
    })),
  )
  printTable(
    'targets',
    checks.map((c) => ({
      check: c.check,
      ratio: c.ratio.toFixed(3),
      target: c.target,
      verdict: verdict(c.pass),
    })),
  )
  const path = await writeResults('registry', { machine: machineInfo(), measurements: m, checks })
  console.log(`\nwrote ${path}`)
  const failed = checks.filter((c) => !c.pass)
  if (failed.length > 0) {
    throw new Error(
      `bench/registry: ${failed.length} of ${checks.length} checks FAIL: ${failed.map((c) => `${c.check} (${c.ratio.toFixed(3)})`).join('; ')}`,
    )
  }
}
