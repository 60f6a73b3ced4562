import { join } from 'node:path'
import type { BuildOutcome } from '../build/engine.js'
import { imageBlobs } from '../build/builder.js'
import type { GrailHome } from '../home.js'
import { lockPath } from '../lifecycle/lock.js'
import { openStore } from '../oci/store.js'
import type { Project } from '../spec/types.js'
import { findImageByKey, getCachedLayer, openDb } from '../state/index.js'
import type { NoopStamp } from './noop-stamp.js'
import {
  copyInputPaths,
  dbState,
  identity,
  racy,
  runKey,
  specSearchFromCwd,
  STAMP_FORMAT_VERSION,
  stampableArgv,
  writeStampFile,
} from './noop-stamp.js'

/** Changes this close to the build's start could hide behind an identity recorded after them. */
const RACY_MARGIN_MS = 1000

/**
 * After a `grail build` whose every image was unchanged, records the stamp the next one checks before
 * loading the CLI (noop-stamp.ts). None is written (and the caller has removed the old one) unless every
 * input can be told apart from a later change: the spec is YAML, no base reads host files, nothing the
 * build read changed since it started, and the database holds, with no other command writing it, exactly
 * the versions and cached layers the outcome names.
 */
export async function recordNoopStamp(opts: {
  argv: readonly string[]
  project: Project
  home: GrailHome
  outcome: BuildOutcome
  lock: { changed: string[]; upgraded: boolean }
  stdout: string
  startedAt: number
}): Promise<boolean> {
  const { project, home, outcome } = opts
  if (!stampableArgv(opts.argv) || opts.lock.changed.length > 0 || opts.lock.upgraded) return false
  if (outcome.verify.length > 0 || outcome.images.length === 0) return false
  if (outcome.images.some((i) => !i.unchanged || i.restored || i.record.status !== 'active')) return false
  const search = specSearchFromCwd()
  if (search === undefined || search.file === undefined || search.file !== project.file) return false

  const paths = new Map<string, string | null>()
  for (const d of search.looked) paths.set(d, identity(d))
  paths.set(project.file, identity(project.file))
  paths.set(lockPath(project), identity(lockPath(project)))
  for (const built of outcome.images) {
    const image = project.images[built.name]
    if (image === undefined) return false
    if (!['debian', 'scratch', 'image'].includes(image.base.kind)) return false
    for (const step of image.steps)
      if (step.kind === 'copy' && !copyInputPaths(image.context, step.from, paths)) return false
  }
  if (racy(paths, opts.startedAt - RACY_MARGIN_MS)) return false

  // the database as the build left it, checked against the outcome, and unchanged by the check
  const before = dbState(home.db)
  if (before === undefined) return false
  const store = await openStore(home.oci, home.tmp)
  const blobs: Array<[string, string]> = []
  const db = openDb(home.db)
  try {
    for (const built of outcome.images) {
      const now = findImageByKey(db, built.name, built.buildKey)
      if (now === undefined || JSON.stringify(now) !== JSON.stringify(built.record)) return false
      if (built.steps.some((s) => getCachedLayer(db, s.key)?.digest !== s.layer)) return false
      for (const d of await imageBlobs(store, built.digest)) blobs.push([d, store.blobPath(d)])
    }
  } finally {
    db.close()
  }
  const after = dbState(home.db)
  if (after === undefined || after.hash !== before.hash || after.size !== before.size) return false

  const stamp: NoopStamp = {
    format: STAMP_FORMAT_VERSION,
    run: runKey(opts.argv),
    specDir: search.dir,
    specFile: search.file,
    paths: [...paths],
    db: { path: home.db, ...after },
    blobs,
    blobChecks: join(home.root, 'blob-checks.json'),
    stdout: opts.stdout,
  }
  writeStampFile(home.root, stamp)
  return true
}
