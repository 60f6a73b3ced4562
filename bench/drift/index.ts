// Drift detection: Grail scanning 50 running instances of a 10,000-file image (5 changed files each)
// against AIDE (Debian's `aide`) checking one instance's rootfs against its baseline, in the same run.
// Target: Grail scans all 50 faster than AIDE checks one.
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FileChange, InstanceHandle } from '../../src/runtime/types.js'
import { mountsUnder } from '../../src/util/mounts.js'
import { measure, ms, printTable, writeResults } from '../lib.js'
import {
  AIDE_ATTRIBUTES,
  type AideReport,
  aideCheck,
  aideInit,
  aidePeakRssKiB,
  aideVersion,
  writeAideConfig,
} from './aide.js'
import { buildDriftImage, FILE_BYTES, FILE_DIRS, FILES_PER_DIR } from './image.js'
import { changeInstance, checkDiff, type Fleet, openFleet, startInstances } from './instances.js'
import { fileDrift } from '../../src/drift/files.js'
import type { Digest } from '../../src/oci/digest.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 7)
const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 50)

/**
 * Grail's side of the bench: the drift scan `grail drift` runs per instance, every instance one after
 * another: the provider's diff of the overlay upper dir (O(changed files), changed files hashed), compared
 * with the image's recorded file manifest (a touch is told from a change) and classified.
 */
export async function grailScanAll(
  fleet: Fleet,
  image: Digest,
  handles: readonly InstanceHandle[],
): Promise<FileChange[][]> {
  const out: FileChange[][] = []
  for (const h of handles) {
    const res = await fileDrift({
      home: fleet.home,
      store: fleet.store,
      provider: fleet.provider,
      instance: h.id,
      image,
      ignore: [],
      hotfixes: [],
      now: Date.now(),
      withDiffs: false,
    })
    if (res.files.length !== res.changes.length - res.touched)
      throw new Error(`${h.id}: ${res.files.length} findings for ${res.changes.length} changes`)
    out.push(res.changes)
  }
  return out
}

/** How far this process's RSS rose above where it started while `fn` ran, sampled every millisecond. */
async function peakRssDelta(fn: () => Promise<unknown>): Promise<number> {
  const base = process.memoryUsage.rss()
  let peak = base
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage.rss())
  }
  const timer = setInterval(sample, 1)
  try {
    await fn()
  } finally {
    clearInterval(timer)
  }
  sample()
  return peak - base
}

const SECTION = { A: 'added', D: 'removed', C: 'changed' } as const

/** Throws unless AIDE saw changes and listed each expected path in the matching section. */
function checkAide(report: AideReport, expected: readonly FileChange[]): void {
  if (report.code === 0) throw new Error('aide --check found no changes in a changed rootfs')
  const missing = expected.filter((c) => !report[SECTION[c.kind]].includes(c.path))
  if (missing.length > 0) {
    const list = missing.map((c) => `${c.kind} ${c.path}`).join(', ')
    throw new Error(`aide --check did not report ${list}: ${JSON.stringify(report)}`)
  }
}

/**
 * Destroys every instance, then removes the temp dir unless something is still mounted below it; an error
 * of destroy is thrown after the removal (or as the cause of the "still mounted" error).
 */
async function cleanup(work: string, fleet: Fleet | undefined): Promise<void> {
  let destroyError: unknown
  try {
    await fleet?.destroyAll()
  } catch (err) {
    destroyError = err
  }
  const left = await mountsUnder(work)
  // rm must never run through a live mount: it would delete the image's snapshots through it
  if (left.length > 0) {
    throw new Error(`still mounted, ${work} left in place: ${left.join(', ')}`, { cause: destroyError })
  }
  await rm(work, { recursive: true, force: true })
  if (destroyError !== undefined) throw destroyError
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`
const counts = (r: AideReport) => `${r.added.length} A, ${r.changed.length} C, ${r.removed.length} D`
const kinds = (cs: readonly FileChange[]) =>
  (['A', 'C', 'D'] as const).map((k) => `${cs.filter((c) => c.kind === k).length} ${k}`).join(', ')

export async function run(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'grail-bench-drift-'))
  let fleet: Fleet | undefined
  try {
    const img = await buildDriftImage(join(work, 'project'))
    fleet = await openFleet(img.home)
    const f = fleet
    const { handles } = fleet
    const t0 = performance.now()
    await startInstances(fleet, img.image, INSTANCES)
    const startMs = performance.now() - t0
    const first = handles[0] as InstanceHandle

    // AIDE's baseline: instance 0's merged rootfs before any change (untimed, as Grail's is the image)
    const aideDir = join(work, 'aide')
    await mkdir(aideDir)
    const workers = cpus().length
    const aide = await writeAideConfig({ dir: aideDir, rootfs: fleet.rootfs(first), workers: 1 })
    const aideAll = await writeAideConfig({ dir: aideDir, rootfs: fleet.rootfs(first), workers })
    const t1 = performance.now()
    await aideInit(aide)
    const aideInitMs = performance.now() - t1
    const before = await aideCheck(aide)
    if (before.code !== 0)
      throw new Error(`aide --check reports changes before any: ${JSON.stringify(before)}`)
    const untouched = (await grailScanAll(f, img.image.digest, handles)).findIndex((c) => c.length > 0)
    if (untouched >= 0) throw new Error(`instance ${handles[untouched]?.id} has changes before any were made`)

    // five changes per instance, then both tools must find them
    const expected: FileChange[][] = []
    for (const [i, h] of handles.entries()) expected.push(await changeInstance(fleet.rootfs(h), i))
    const scan = await grailScanAll(f, img.image.digest, handles)
    for (const [i, h] of handles.entries()) checkDiff(h.id, scan[i] ?? [], expected[i] ?? [])
    const report = await aideCheck(aide)
    checkAide(report, expected[0] ?? [])

    // timed: Grail over all instances, AIDE over one (with its default single worker and with every core)
    const grailAll = await measure(() => grailScanAll(f, img.image.digest, handles), { runs: RUNS })
    const grailOne = await measure(() => grailScanAll(f, img.image.digest, [first]), { runs: RUNS })
    const aideOne = await measure(() => aideCheck(aide), { runs: RUNS })
    const aideOneAll = await measure(() => aideCheck(aideAll), { runs: RUNS })
    const grailRss = await peakRssDelta(() => grailScanAll(f, img.image.digest, handles))
    const aideRssKiB = await aidePeakRssKiB(aide, aideDir)

    const ratio = grailAll.median / aideOne.median
    const met = grailAll.median < aideOne.median && grailAll.median < aideOneAll.median
    const rows = [
      {
        measurement: `scan ${INSTANCES} instances (median)`,
        grail: ms(grailAll.median),
        aide: '-',
        ratio: '-',
        target: '-',
      },
      {
        measurement: 'check 1 instance (median)',
        grail: ms(grailOne.median),
        aide: ms(aideOne.median),
        ratio: (grailOne.median / aideOne.median).toFixed(4),
        target: '-',
      },
      {
        measurement: `check 1 instance, aide num_workers=${workers}`,
        grail: ms(grailOne.median),
        aide: ms(aideOneAll.median),
        ratio: (grailOne.median / aideOneAll.median).toFixed(4),
        target: '-',
      },
      {
        measurement: `grail ${INSTANCES} instances vs aide 1`,
        grail: ms(grailAll.median),
        aide: ms(aideOne.median),
        ratio: ratio.toFixed(3),
        target: `grail(${INSTANCES}) < aide(1) ${met ? 'met' : 'MISSED'}`,
      },
      {
        measurement: 'baseline (untimed)',
        grail: 'the image',
        aide: ms(aideInitMs),
        ratio: '-',
        target: '-',
      },
      {
        measurement: 'peak RSS',
        grail: `+${mib(grailRss)} (in-process)`,
        aide: aideRssKiB === undefined ? '-' : mib(aideRssKiB * 1024),
        ratio: '-',
        target: '-',
      },
      {
        measurement: 'changes found (instance 0, 5 made)',
        grail: kinds(scan[0] ?? []),
        aide: counts(report),
        ratio: '-',
        target: '-',
      },
    ]
    printTable(
      `bench/drift: ${INSTANCES} instances × ${img.fileCount} files, grail diff vs aide --check of one`,
      rows,
    )

    const path = await writeResults('drift', {
      runs: RUNS,
      instances: INSTANCES,
      image: {
        digest: img.image.digest,
        files: img.fileCount,
        generated: { dirs: FILE_DIRS, perDir: FILES_PER_DIR, bytes: FILE_BYTES },
        buildMs: img.buildMs,
      },
      setupMs: { createAndStartAll: startMs, aideInit: aideInitMs },
      grail: {
        scanAll: grailAll,
        scanOne: grailOne,
        peakRssDeltaBytes: grailRss,
        changesInstance0: scan[0],
      },
      aide: {
        version: await aideVersion(),
        attributes: AIDE_ATTRIBUTES,
        check: aideOne,
        checkAllCores: { workers, ...aideOneAll },
        peakRssKiB: aideRssKiB ?? null,
        report,
      },
      ratios: { grailAllVsAideOne: ratio, grailAllVsAideOneAllCores: grailAll.median / aideOneAll.median },
      target: { grailAllFasterThanAideOne: met },
      notes: [
        `grail: the drift scan of \`grail drift\` (fileDrift) for each running instance (sleep as PID 1), one after another, in this process: the provider's diff reads the overlay upper dir only, O(changed files), and SHA-256-hashes the changed regular files; each change is compared with the image's recorded file manifest (touch vs change) and classified (ignore globs, hotfixes); no text diffs; the manifest is parsed once per process, by the first (untimed) scan`,
        `aide: \`aide --check\` of instance 0's merged rootfs (host view of the overlay mount) against a database made by \`aide --init\` after the instance started and before any change; a new aide process per run, hashing every file with SHA-256; attributes ${AIDE_ATTRIBUTES} (type, permissions, owner, group, size, link target, content); mtime, ctime, atime, inode, link and block counts, ACLs and xattrs are left out: Grail compares none of them and a copy-up alone changes inode and ctime`,
        `aide runs with num_workers=1 (its default) and with num_workers=${workers} (every core); the target counts as met only if grail's scan of all instances beats both`,
        'every instance gets 5 changes through its merged rootfs from the host: 2 modified (one rewritten at the same size, one appended to), 2 added (one beside the generated files, one in /etc), 1 deleted; grail must report exactly those for every instance and aide must list the 5 of instance 0, or the bench fails',
        'page cache warm for both: the files were just written and built, and aide read them for its baseline; 1 untimed warm-up run each',
        'peak RSS: grail = rise of this process above its RSS before one scan of all instances, sampled every 1 ms; aide = max RSS of one `aide --check` process (GNU time %M)',
      ],
    })
    console.log(`results: ${path}`)
  } finally {
    await cleanup(work, fleet)
  }
}
