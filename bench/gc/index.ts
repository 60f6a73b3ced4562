// Garbage collection: `grail gc` over 1,000 image versions (10 names × 100) sharing base layers, 20 of them
// deployed, against Debian's `docker-registry garbage-collect --delete-untagged` over a registry storage
// holding the very same blobs, with the same versions tagged. Both as a user runs them: one process each,
// --dry-run and for real, every run on a fresh copy of the prepared data.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { GcReport } from '../../src/lifecycle/gc.js'
import { type Command, runCommand } from '../../src/util/exec.js'
import { BENCH_DIR, type Measurement, ms, printTable, summarize, writeResults } from '../lib.js'
import { checkGrail, checkRegistry, grailBlobs } from './check.js'
import {
  BASE_LAYER_BYTES,
  BASE_LAYERS,
  BASE_LAYERS_PER_VERSION,
  type History,
  IN_USE,
  NAMES,
  SPEC,
  UNIQUE_LAYER_BYTES,
  VERSIONS,
  VERSIONS_PER_BASE,
  writeGrailHome,
} from './fixture.js'
import {
  registryBlobs,
  registryConfig,
  registryGcCommand,
  registryVersion,
  writeRegistry,
} from './registry.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const WARMUP = 1
const GRAIL_BIN = join(BENCH_DIR, '..', 'bin', 'grail.js')
const TIME = '/usr/bin/time'

interface Sample {
  wallMs: number
  maxRssKiB: number
  stdout: string
}

/** Runs `cmd` under GNU time: wall time from spawn to exit, seen from here, and the child's peak RSS. */
async function timed(cmd: Command, scratch: string): Promise<Sample> {
  const out = join(scratch, 'time.txt')
  const start = performance.now()
  const res = await runCommand({ ...cmd, file: TIME, args: ['-f', '%M', '-o', out, cmd.file, ...cmd.args] })
  const wallMs = performance.now() - start
  const maxRssKiB = Number((await readFile(out, 'utf8')).trim().split('\n').at(-1))
  if (!Number.isFinite(maxRssKiB) || maxRssKiB <= 0)
    throw new Error(`GNU time gave no peak RSS for ${cmd.file}`)
  return { wallMs, maxRssKiB, stdout: res.stdout.toString() }
}

/** The environment without GRAIL_HOME, so the CLI uses the copied project's own `.grail/`. */
function grailEnv(): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'GRAIL_HOME') env[k] = v
  return env
}

function grailGcCommand(projectDir: string, dryRun: boolean): Command {
  return {
    file: process.execPath,
    args: [GRAIL_BIN, '-C', projectDir, '--json', 'gc', ...(dryRun ? ['--dry-run'] : []), '--grace', '0s'],
    env: grailEnv(),
  }
}

interface Runs {
  wall: Measurement
  maxRssKiB: Measurement
  bytesFreed: number
  blobsFreed: number
}

const RESULT_KEYS = ['grailDry', 'grail', 'registryDry', 'registry'] as const
type Variant = (typeof RESULT_KEYS)[number]

/** One timed run: the process's wall time and peak RSS, and what it freed (bytes measured on disk). */
type Run = Sample & { blobsFreed: number; bytesFreed: number }

/**
 * One run of a variant on a fresh copy (`cp -a`, untimed) of the prepared project or registry storage:
 * the tool's process timed under GNU time, its result checked against the history, the copy removed.
 * Bytes freed are measured on disk for the real runs; a dry run's are Grail's report and, for the
 * registry (which reports no bytes), the sizes of the blobs it lists, which the check made equal to the
 * expected ones.
 */
async function runOnce(variant: Variant, base: string, scratch: string, h: History): Promise<Run> {
  await rm(scratch, { recursive: true, force: true })
  await mkdir(scratch, { recursive: true })
  const dryRun = variant === 'grailDry' || variant === 'registryDry'
  try {
    if (variant === 'grailDry' || variant === 'grail') {
      const project = join(scratch, 'project')
      await runCommand({ file: 'cp', args: ['-a', join(base, 'project'), project] })
      const before = await grailBlobs(project)
      const s = await timed(grailGcCommand(project, dryRun), scratch)
      const report = JSON.parse(s.stdout) as GcReport
      await checkGrail(report, project, h, dryRun)
      const after = await grailBlobs(project)
      const bytesFreed = dryRun ? report.blobs.bytes : before.bytes - after.bytes
      return { ...s, blobsFreed: report.blobs.deleted, bytesFreed }
    }
    const root = join(scratch, 'registry')
    await runCommand({ file: 'cp', args: ['-a', join(base, 'registry'), root] })
    const config = join(scratch, 'config.yml')
    await writeFile(config, registryConfig(root))
    const before = await registryBlobs(root)
    const s = await timed(registryGcCommand({ config, dryRun }), scratch)
    const summary = await checkRegistry(s.stdout, root, h, dryRun)
    const after = await registryBlobs(root)
    const bytesFreed = dryRun ? h.freed.bytes : before.bytes - after.bytes
    return { ...s, blobsFreed: summary.blobsEligible, bytesFreed }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}

/** Process start alone: `grail --help` and `docker-registry --help`, the floor under every gc run. */
async function startFloor(scratch: string): Promise<{ grail: Measurement; registry: Measurement }> {
  await mkdir(scratch, { recursive: true })
  const grail: number[] = []
  const registry: number[] = []
  try {
    for (let i = -WARMUP; i < RUNS; i++) {
      const g = await timed({ file: process.execPath, args: [GRAIL_BIN, '--help'] }, scratch)
      const r = await timed({ file: 'docker-registry', args: ['--help'] }, scratch)
      if (i < 0) continue
      grail.push(g.wallMs)
      registry.push(r.wallMs)
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  return { grail: summarize(grail), registry: summarize(registry) }
}

const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`
const mibBytes = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`
const ratio = (a: number, b: number) => (a / b).toFixed(2)
const thousands = (n: number) => n.toLocaleString('en-US')

export async function run(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'grail-bench-gc-'))
  try {
    const base = join(work, 'base')
    await mkdir(join(base, 'project'), { recursive: true })
    const t0 = performance.now()
    const h = await writeGrailHome(join(base, 'project'))
    const grailSetupMs = performance.now() - t0
    const t1 = performance.now()
    await writeRegistry(
      join(base, 'registry'),
      join(base, 'project', '.grail', 'oci', 'blobs', 'sha256'),
      h.versions,
    )
    const registrySetupMs = performance.now() - t1

    const samples = Object.fromEntries(RESULT_KEYS.map((k) => [k, [] as Run[]])) as Record<Variant, Run[]>
    // interleaved, so load on the machine spreads over both tools alike
    for (let i = -WARMUP; i < RUNS; i++)
      for (const variant of RESULT_KEYS) {
        const s = await runOnce(variant, base, join(work, 'run'), h)
        if (i >= 0) samples[variant].push(s)
      }
    const floor = await startFloor(join(work, 'floor'))
    const result = (k: Variant): Runs => {
      const list = samples[k]
      // every run was checked to free the same blobs, so the last one stands for all
      const last = list.at(-1) as Run
      return {
        wall: summarize(list.map((s) => s.wallMs)),
        maxRssKiB: summarize(list.map((s) => s.maxRssKiB)),
        bytesFreed: last.bytesFreed,
        blobsFreed: last.blobsFreed,
      }
    }
    const r = Object.fromEntries(RESULT_KEYS.map((k) => [k, result(k)])) as Record<Variant, Runs>
    const kept = h.versions.length - h.collected.size
    const rows = [
      {
        measurement: 'image versions',
        grail: `${thousands(h.versions.length)} (${NAMES} names × ${VERSIONS})`,
        registry: `${thousands(h.versions.length)} manifests, ${NAMES} repos`,
        ratio: '-',
      },
      {
        measurement: 'shared layers',
        grail: `${BASE_LAYERS} base, ${BASE_LAYERS_PER_VERSION} per version (+1 own)`,
        registry: 'the same blobs',
        ratio: '-',
      },
      {
        measurement: 'in use / kept',
        grail: `${IN_USE} deployed + ${NAMES} newest = ${kept}`,
        registry: `${IN_USE} tagged vN + ${NAMES} latest = ${kept}`,
        ratio: '-',
      },
      {
        measurement: `gc --dry-run wall (median of ${RUNS})`,
        grail: ms(r.grailDry.wall.median),
        registry: ms(r.registryDry.wall.median),
        ratio: ratio(r.grailDry.wall.median, r.registryDry.wall.median),
      },
      {
        measurement: 'gc --dry-run peak RSS',
        grail: mib(r.grailDry.maxRssKiB.median),
        registry: mib(r.registryDry.maxRssKiB.median),
        ratio: ratio(r.grailDry.maxRssKiB.median, r.registryDry.maxRssKiB.median),
      },
      {
        measurement: `gc wall (median of ${RUNS})`,
        grail: ms(r.grail.wall.median),
        registry: ms(r.registry.wall.median),
        ratio: ratio(r.grail.wall.median, r.registry.wall.median),
      },
      {
        measurement: 'gc peak RSS',
        grail: mib(r.grail.maxRssKiB.median),
        registry: mib(r.registry.maxRssKiB.median),
        ratio: ratio(r.grail.maxRssKiB.median, r.registry.maxRssKiB.median),
      },
      {
        measurement: 'blobs freed',
        grail: `${thousands(r.grail.blobsFreed)} of ${thousands(h.blobs.size)}`,
        registry: `${thousands(r.registry.blobsFreed)} of ${thousands(h.blobs.size)}`,
        ratio: '-',
      },
      {
        measurement: 'bytes freed',
        grail: mibBytes(r.grail.bytesFreed),
        registry: mibBytes(r.registry.bytesFreed),
        ratio: '-',
      },
      {
        measurement: 'process start (--help)',
        grail: ms(floor.grail.median),
        registry: ms(floor.registry.median),
        ratio: ratio(floor.grail.median, floor.registry.median),
      },
    ]
    printTable(
      `bench/gc: ${thousands(h.versions.length)} image versions sharing layers, ${IN_USE} in use: grail gc vs docker-registry garbage-collect`,
      rows,
    )

    const path = await writeResults('gc', {
      runs: RUNS,
      warmup: WARMUP,
      history: {
        names: NAMES,
        versionsPerName: VERSIONS,
        baseLayers: BASE_LAYERS,
        baseLayersPerVersion: BASE_LAYERS_PER_VERSION,
        versionsPerBaseGeneration: VERSIONS_PER_BASE,
        baseLayerBytes: BASE_LAYER_BYTES,
        uniqueLayerBytes: UNIQUE_LAYER_BYTES,
        inUse: IN_USE,
        blobs: h.blobs.size,
        blobBytes: [...h.blobs.values()].reduce((a, b) => a + b, 0),
        keptVersions: kept,
        collectedVersions: h.collected.size,
        liveBlobs: h.liveBlobs.size,
        freedBlobs: h.freed.digests.size,
        freedBytes: h.freed.bytes,
      },
      setupMs: { grailHome: grailSetupMs, registryStorage: registrySetupMs },
      spec: SPEC,
      grail: { gcDryRun: r.grailDry, gc: r.grail, startHelp: floor.grail },
      registry: {
        version: await registryVersion(),
        gcDryRun: r.registryDry,
        gc: r.registry,
        startHelp: floor.registry,
      },
      ratios: {
        dryRunWall: r.grailDry.wall.median / r.registryDry.wall.median,
        dryRunPeakRss: r.grailDry.maxRssKiB.median / r.registryDry.maxRssKiB.median,
        gcWall: r.grail.wall.median / r.registry.wall.median,
        gcPeakRss: r.grail.maxRssKiB.median / r.registry.maxRssKiB.median,
      },
      notes: [
        `history: ${NAMES} image names × ${VERSIONS} versions; each version = ${BASE_LAYERS_PER_VERSION} base layers (${BASE_LAYER_BYTES / 1024} KiB gzipped tars of incompressible bytes, shared: every name builds on the same base, which is rebuilt every ${VERSIONS_PER_BASE} versions, ${BASE_LAYERS} base layers in all) + 1 own layer (${UNIQUE_LAYER_BYTES / 1024} KiB) + an OCI config (rootfs.diff_ids) and manifest, written through Grail's store with catalog rows from insertImage`,
        `in use: ${IN_USE} services (svc-00..svc-19, environment local) with one active release each, on versions 20+n and 60+n of name n, never the newest; policy keepVersions 1, keepReleases 1, keepDeployedWithin 0s, so the ${IN_USE} deployed and the newest of each name are kept (${kept}) and ${h.collected.size} are collected`,
        `registry: the same blob files, laid out under docker/registry/v2 as a push would (blobs/sha256/xx/<hex>/data; per repository gcbench/<name> _layers links, _manifests/revisions links, tag current and index links); Grail's OCI manifests unchanged (distribution 2.8 reads OCI image manifests); the ${IN_USE} deployed versions are tagged vN and each newest version latest, the rest untagged, so --delete-untagged keeps the same ${kept} versions Grail keeps`,
        'grail: `node bin/grail.js -C <project> --json gc [--dry-run] --grace 0s` (dist/ as npm run bench builds it), which loads grail.yaml, opens state.db, the store and the local provider (no instances), plans from catalog and releases and deletes; includes Node start',
        'registry: `docker-registry garbage-collect [--dry-run] --delete-untagged config.yml` (filesystem storage, log level error); includes its start; its per-blob output goes to a pipe read by the bench',
        'every run (and one untimed warm-up per variant) works on a fresh `cp -a` copy of the prepared project or registry storage, made before the clock starts; page cache warm for both',
        'wall: spawn to exit, seen from the bench; peak RSS: GNU time %M of the process (Node with its V8 heap for Grail, the Go binary for the registry)',
        'checked on every run, or the bench fails: grail reports exactly the expected collected versions and blob count and bytes, and after the real run its store holds exactly the blobs of the kept versions (dry run: all); the registry lists exactly the expected blobs as eligible, its summary counts the expected marked blobs and untagged manifests, and after the real run its storage holds exactly the kept blobs and manifest revisions (dry run: all)',
        'process start: `grail --help` and `docker-registry --help`, the floor included in every gc number above',
      ],
    })
    console.log(`results: ${path}`)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
