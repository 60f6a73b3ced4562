// bench/gc's correctness checks: what each tool reported and what it left on disk, against the history.
// A run that keeps a blob it should free, or frees one it must keep, fails the bench.
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { GcReport } from '../../src/lifecycle/gc.js'
import type { History } from './fixture.js'
import { parseRegistryGc, type RegistryGcSummary, registryBlobs, registryRevisions } from './registry.js'

const sameSet = (a: ReadonlySet<string>, b: ReadonlySet<string>) =>
  a.size === b.size && [...a].every((x) => b.has(x))

function diffSets(what: string, got: ReadonlySet<string>, want: ReadonlySet<string>): void {
  if (sameSet(got, want)) return
  const extra = [...got].filter((x) => !want.has(x)).slice(0, 5)
  const missing = [...want].filter((x) => !got.has(x)).slice(0, 5)
  throw new Error(
    `${what}: ${got.size} instead of ${want.size}; unexpected ${extra.join(', ')}; missing ${missing.join(', ')}`,
  )
}

/** Digests of the blobs in Grail's store, and their total size. */
export async function grailBlobs(projectDir: string): Promise<{ digests: Set<string>; bytes: number }> {
  const dir = join(projectDir, '.grail', 'oci', 'blobs', 'sha256')
  const digests = new Set<string>()
  let bytes = 0
  for (const hex of await readdir(dir)) {
    digests.add(`sha256:${hex}`)
    bytes += (await stat(join(dir, hex))).size
  }
  return { digests, bytes }
}

/** Throws unless Grail's report names exactly the expected versions and blobs (and, if real, the store agrees). */
export async function checkGrail(
  report: GcReport,
  projectDir: string,
  h: History,
  dryRun: boolean,
): Promise<void> {
  const { freed } = h
  if (report.dryRun !== dryRun) throw new Error(`grail gc: report says dryRun ${report.dryRun}`)
  diffSets(
    'grail gc: collected versions',
    new Set(report.images.collected.map((i) => `${i.name}@${i.version}`)),
    h.collected,
  )
  if (report.images.kept !== h.versions.length - h.collected.size)
    throw new Error(
      `grail gc: kept ${report.images.kept} versions, expected ${h.versions.length - h.collected.size}`,
    )
  if (
    report.blobs.deleted !== freed.digests.size ||
    report.blobs.bytes !== freed.bytes ||
    report.blobs.young !== 0
  )
    throw new Error(
      `grail gc: blobs ${JSON.stringify(report.blobs)}, expected ${freed.digests.size} (${freed.bytes} bytes)`,
    )
  const left = await grailBlobs(projectDir)
  diffSets(
    `grail gc${dryRun ? ' --dry-run' : ''}: blobs left in the store`,
    left.digests,
    dryRun ? new Set(h.blobs.keys()) : h.liveBlobs,
  )
}

/** Throws unless the registry's run freed exactly the expected blobs and, if real, removed the untagged manifests. */
export async function checkRegistry(
  stdout: string,
  root: string,
  h: History,
  dryRun: boolean,
): Promise<RegistryGcSummary> {
  const { freed } = h
  const summary = parseRegistryGc(stdout)
  const eligible = new Set(
    [...stdout.matchAll(/^blob eligible for deletion: (sha256:[0-9a-f]{64})$/gm)].map((m) => m[1] as string),
  )
  diffSets('registry gc: blobs eligible for deletion', eligible, freed.digests)
  if (summary.marked !== h.liveBlobs.size || summary.manifestsEligible !== h.collected.size)
    throw new Error(
      `registry gc: ${JSON.stringify(summary)}, expected ${h.liveBlobs.size} marked, ${h.collected.size} manifests`,
    )
  const left = await registryBlobs(root)
  diffSets(
    `registry gc${dryRun ? ' --dry-run' : ''}: blobs left`,
    left.digests,
    dryRun ? new Set(h.blobs.keys()) : h.liveBlobs,
  )
  const kept = new Set(
    h.versions.filter((v) => !h.collected.has(`${v.name}@${v.version}`)).map((v) => v.manifest.digest),
  )
  const revisions = await registryRevisions(root, h.versions)
  diffSets(
    'registry gc: manifest revisions left',
    revisions,
    dryRun ? new Set(h.versions.map((v) => v.manifest.digest)) : kept,
  )
  return summary
}
