import { createWriteStream } from 'node:fs'
import { chmod, copyFile, lstat, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import { join, posix, relative } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { produceGrailBase } from '../build/base-local.js'
import type { BuildEnv } from '../build/env.js'
import { syncIndex, writeImage } from '../build/image-writer.js'
import { layerFromEntries } from '../build/layers.js'
import { GrailError } from '../errors.js'
import { imageFileManifest } from '../oci/file-manifest.js'
import type { PackEntry } from '../oci/tar/index.js'
import { WHITEOUT_PREFIX } from '../oci/tar/index.js'
import type { FileChange, InstanceHandle, RuntimeProvider } from '../runtime/types.js'
import { appendImageSteps } from '../spec/edit.js'
import { projectSecrets } from '../plan/secrets.js'
import {
  allReleases,
  appendEvent,
  type ImageRecord,
  insertImage,
  listHotfixes,
  listImages,
} from '../state/index.js'
import { secretIn } from '../util/redact.js'
import { fileDrift } from './files.js'
import { liveInstance } from './hotfix.js'
import type { DriftEnv } from './scan.js'

export interface CaptureResult {
  instance: string
  /** the image the instance ran and the new version made from it */
  parent: { name: string; version: number; digest: string }
  image: { name: string; version: number; digest: string }
  hotfixes: number[]
  changes: Array<{ kind: 'A' | 'C' | 'D'; path: string }>
  /** project-relative directory the changed files were written to, and the steps added to the spec */
  dir: string | null
  steps: Array<Record<string, unknown>>
  /** paths the spec steps cannot reproduce exactly (say, an empty new directory) */
  warnings: string[]
}

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8)}`
const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

/** The copy step's default mode for a file (0644, or 0755 when executable). */
const defaultMode = (mode: number): number => (mode & 0o111 ? 0o755 : 0o644)

/**
 * `grail capture`: turns what changed in a live instance (its drift, minus ignored paths) into a new
 * version of its image: the parent image plus one layer with the changed files and whiteouts for the
 * deleted ones, its provenance (instance, hotfixes) in the catalog and the event log. It also writes the
 * changed files under `captured/<image>/` and appends matching steps to grail.yaml (comments and layout
 * kept), so that the next ordinary build reproduces the same files. The changed files' content is read
 * through the provider (`readFile`) into a staging dir of the home, removed afterwards.
 */
export async function captureInstance(
  a: DriftEnv,
  opts: { instance: string; writeSpec: boolean; epoch?: number; allowSecrets?: boolean },
): Promise<CaptureResult> {
  await mkdir(a.home.tmp, { recursive: true })
  const staging = await mkdtemp(join(a.home.tmp, 'capture-'))
  try {
    return await captureInto(a, opts, staging)
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
}

/**
 * Copies the content of every changed regular file out of the instance (provider `readFile`) into
 * `staging`; returns where each path's copy is, by path.
 */
async function stageChangedFiles(
  provider: RuntimeProvider,
  h: InstanceHandle,
  changes: FileChange[],
  staging: string,
): Promise<Map<string, string>> {
  const sources = new Map<string, string>()
  for (const c of changes) {
    if (c.kind === 'D' || c.current?.type !== 'file') continue
    const to = join(staging, String(sources.size))
    await pipeline(await provider.readFile(h, c.path), createWriteStream(to, { mode: 0o600 }))
    sources.set(c.path, to)
  }
  return sources
}

async function captureInto(
  a: DriftEnv,
  opts: { instance: string; writeSpec: boolean; epoch?: number; allowSecrets?: boolean },
  staging: string,
): Promise<CaptureResult> {
  const rec = liveInstance(a, opts.instance)
  const handle = { id: rec.id, provider: a.provider.name }
  const observed = await a.provider.inspect(handle)
  const parent = listImages(a.db).find((i) => i.digest === observed.imageDigest)
  if (parent === undefined) {
    throw new GrailError(
      'IMAGE_NOT_FOUND',
      `instance ${rec.id} runs ${observed.imageDigest}, which is not in the catalog`,
      {
        hint: 'only instances of images Grail built can be captured',
      },
    )
  }
  const svc = a.project.environments[a.environment]?.services[rec.service]
  const drift = await fileDrift({
    home: a.home,
    store: a.store,
    provider: a.provider,
    instance: rec.id,
    image: parent.digest,
    ignore: svc?.drift.ignore ?? [],
    hotfixes: [],
    now: Date.now(),
    withDiffs: false,
  })
  const wanted = new Set(drift.files.filter((f) => f.class !== 'expected').map((f) => f.path))
  const changes = drift.changes.filter((c) => wanted.has(c.path))
  if (changes.length === 0) {
    throw new GrailError(
      'NOTHING_TO_CAPTURE',
      `instance ${rec.id} has no changes against ${parent.name} v${parent.version}`,
      {
        hint: 'see `grail drift`; ignored paths (drift.ignore) are never captured',
      },
    )
  }
  for (const c of changes) {
    if (c.kind !== 'D' && c.current === undefined) {
      // overlay reports a directory deleted and made again as opaque: copy steps cannot say "empty it first"
      throw new GrailError(
        'CAPTURE_UNSUPPORTED',
        `${c.path} in ${rec.id} was deleted and created again as a whole; capture cannot express that`,
        {
          hint: 'make the change in grail.yaml instead (a run step that empties and refills it), then rebuild',
        },
      )
    }
  }
  const sources = await stageChangedFiles(a.provider, handle, changes, staging)
  const secrets = await secretFiles(a, changes, sources)
  if (secrets.length > 0 && opts.allowSecrets !== true) {
    throw new GrailError(
      'CAPTURE_SECRET',
      `${secrets.map((f) => `${f.path} holds ${f.why}`).join('; ')}: capture would put it into the image ${parent.name} and into captured/`,
      {
        hint: `move the secret into the service's env or files (marked secret: true) and undo the change in ${rec.id}, add the path to drift.ignore, or capture it anyway with --allow-secrets`,
      },
    )
  }
  const hotfixes = listHotfixes(a.db, { instance: rec.id }).map((h) => h.id)
  const epoch = opts.epoch ?? a.project.images[parent.name]?.sourceDateEpoch ?? 1
  const env: BuildEnv = { home: a.home, store: a.store, db: a.db, epoch, noCache: false, log: () => {} }

  // the new layer: changed entries as they are in the instance, deletions as whiteouts
  const entries: PackEntry[] = []
  for (const c of changes) {
    const rel = c.path.replace(/^\/+/, '')
    if (c.kind === 'D') {
      const dir = posix.dirname(rel)
      const name = `${WHITEOUT_PREFIX}${posix.basename(rel)}`
      entries.push({
        path: dir === '.' ? name : `${dir}/${name}`,
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: epoch,
        data: Buffer.alloc(0),
      })
      continue
    }
    const cur = c.current as NonNullable<FileChange['current']>
    const type = cur.type
    if (type === 'link') {
      throw new GrailError(
        'CAPTURE_UNSUPPORTED',
        `${c.path} in ${rec.id} is a hard link to ${cur.linkname}`,
        {
          hint: 'replace the hard link with a copy or a symlink inside the instance, then capture again',
        },
      )
    }
    entries.push({
      path: rel,
      type,
      mode: cur.mode,
      uid: cur.uid,
      gid: cur.gid,
      // the staged copy's size: the file may have changed since the diff, and the layer holds the copy
      size: type === 'file' ? (await lstat(sources.get(c.path) as string)).size : 0,
      mtime: epoch,
      ...(cur.linkname !== undefined && type === 'symlink' ? { linkname: cur.linkname } : {}),
      ...(type === 'file' ? { source: sources.get(c.path) as string } : {}),
    })
  }
  const base = await produceGrailBase(parent, env, `capture:${parent.digest}`)
  const layer = await layerFromEntries(env, entries)
  const label = `capture ${rec.id}${hotfixes.length ? ` (hotfix ${hotfixes.map((h) => `#${h}`).join(', ')})` : ''}`
  const state = {
    ...base,
    layers: [...base.layers, layer],
    config: { ...base.config, history: [...(base.config.history ?? []), { created_by: `grail: ${label}` }] },
  }
  const written = await writeImage(a.store, state, epoch)
  await imageFileManifest(a.home, a.store, written.manifest.digest)
  const provenance = {
    kind: 'capture',
    image: `${parent.name}@${parent.version}`,
    from: parent.digest,
    instance: rec.id,
    hotfixes,
  }
  const image: ImageRecord = insertImage(a.db, {
    name: parent.name,
    digest: written.manifest.digest,
    configDigest: written.config.digest,
    buildKey: `capture:${written.manifest.digest}`,
    parentDigest: parent.digest,
    base: provenance,
    gitCommit: null,
    createdAt: new Date().toISOString(),
    size: written.size,
    packages: parent.packages,
  })
  await syncIndex(a.db, a.store)
  // recorded before anything is written into the project: the image exists whatever happens next
  appendEvent(a.db, 'image.captured', `${image.name}@${image.version}`, {
    digest: image.digest,
    ...provenance,
    changes: changes.map((c) => ({ kind: c.kind, path: c.path })),
  })

  let dir: string | null = null
  let steps: Array<Record<string, unknown>> = []
  const warnings: string[] = secrets.map(
    (f) =>
      `${f.path} holds ${f.why}; captured because of --allow-secrets, so the image and captured/ hold it`,
  )
  if (opts.writeSpec) {
    const out = await writeCapturedFiles(a, parent, changes, sources, warnings)
    dir = out.dir
    steps = out.steps
    if (steps.length > 0) {
      try {
        await appendImageSteps(a.project.file, parent.name, steps, {
          comment: `captured from instance ${rec.id}${hotfixes.length ? ` (hotfix ${hotfixes.map((h) => `#${h}`).join(', ')})` : ''}, ${new Date().toISOString().slice(0, 10)}`,
        })
      } catch (err) {
        // the image exists either way; a spec Grail cannot edit (grail.config.ts) gets the steps by hand
        if (!(err instanceof GrailError) || err.code !== 'SPEC_NOT_EDITABLE') throw err
        warnings.push(
          `${err.message}; add these steps to image ${parent.name} by hand: ${JSON.stringify(steps)}`,
        )
      }
    }
  }
  const result: CaptureResult = {
    instance: rec.id,
    parent: { name: parent.name, version: parent.version, digest: parent.digest },
    image: { name: image.name, version: image.version, digest: image.digest },
    hotfixes,
    changes: changes.map((c) => ({ kind: c.kind, path: c.path })),
    dir,
    steps,
    warnings,
  }
  if (steps.length > 0)
    appendEvent(a.db, 'capture.spec', `${image.name}@${image.version}`, { dir, steps, warnings })
  return result
}

/**
 * Writes the changed files under `captured/<image>/` (their paths in the image kept) and returns the spec
 * steps that put them back: one copy per destination directory, mode and owner (so the copy step's mode
 * normalisation never alters them), then one `rm` for the deletions.
 */
async function writeCapturedFiles(
  a: DriftEnv,
  parent: ImageRecord,
  changes: FileChange[],
  /** where the content of each changed regular file was staged */
  sources: Map<string, string>,
  warnings: string[],
): Promise<{ dir: string; steps: Array<Record<string, unknown>> }> {
  const context = a.project.images[parent.name]?.context ?? a.project.dir
  const root = join(context, 'captured', parent.name)
  const groups = new Map<string, { to: string; from: string[]; mode?: string; owner?: string }>()
  const deletions: string[] = []
  for (const c of changes) {
    if (c.kind === 'D') {
      deletions.push(c.path)
      continue
    }
    const cur = c.current as NonNullable<FileChange['current']>
    if (cur.type === 'directory') {
      warnings.push(
        `${c.path}: a new directory is created by the copies of its files, with mode 0755 and owner 0:0`,
      )
      continue
    }
    if (cur.type !== 'file' && cur.type !== 'symlink') {
      warnings.push(
        `${c.path}: ${cur.type} entries cannot be copied from the build context; left out of the spec`,
      )
      continue
    }
    const target = await safeTarget(context, root, c.path)
    await rm(target, { force: true })
    if (cur.type === 'symlink') await symlink(cur.linkname ?? '', target)
    else {
      await copyFile(sources.get(c.path) as string, target)
      await chmod(target, cur.mode & 0o7777)
    }
    const mode =
      cur.type === 'symlink' || defaultMode(cur.mode) === (cur.mode & 0o7777) ? undefined : octal(cur.mode)
    const owner = cur.uid === 0 && cur.gid === 0 ? undefined : `${cur.uid}:${cur.gid}`
    const to = `${posix.dirname(c.path)}/`.replace(/^\/\/$/, '/')
    const key = `${to}\0${mode ?? ''}\0${owner ?? ''}`
    const g = groups.get(key) ?? { to, from: [], ...(mode ? { mode } : {}), ...(owner ? { owner } : {}) }
    g.from.push(relative(context, target))
    groups.set(key, g)
  }
  const steps: Array<Record<string, unknown>> = []
  for (const g of groups.values()) {
    steps.push({
      copy: {
        from: g.from.length === 1 ? g.from[0] : g.from,
        to: g.to,
        ...(g.mode ? { mode: g.mode } : {}),
        ...(g.owner ? { owner: g.owner } : {}),
      },
    })
  }
  if (deletions.length > 0) steps.push({ run: `rm -rf -- ${deletions.map(shellQuote).join(' ')}` })
  return { dir: relative(a.project.dir, root), steps }
}

/**
 * The host path for a captured file under `root`, with its directories created. Instance content decides
 * the names and symlink targets written here, so no directory on the way may be a symlink (an earlier
 * capture could have left one pointing out of the project): that is refused, never followed.
 */
async function safeTarget(context: string, root: string, path: string): Promise<string> {
  const parts = path.split('/').filter((p) => p !== '')
  let dir = context
  for (const part of [...relative(context, root).split('/'), ...parts.slice(0, -1)]) {
    if (part === '' || part === '.' || part === '..') throw unsafe(path)
    dir = join(dir, part)
    const st = await lstat(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined
      throw err
    })
    if (st === undefined) await mkdir(dir)
    else if (!st.isDirectory()) throw unsafe(path)
  }
  const name = parts.at(-1)
  if (name === undefined || name === '..' || name === '.') throw unsafe(path)
  return join(dir, name)
}

function unsafe(path: string): GrailError {
  return new GrailError(
    'CAPTURE_UNSAFE',
    `cannot write captured file ${path}: a directory on its way is a symlink or not a directory`,
    {
      hint: 'remove the captured/ directory (or the file in the way) and capture again',
    },
  )
}

/**
 * The changed files that hold a secret: a secret value of the project or one of its releases, a value
 * assigned to a key of `policies.redact.keys` (`DB_PASSWORD=…`), or a private key; with what it is,
 * never the value.
 */
async function secretFiles(
  a: DriftEnv,
  changes: FileChange[],
  sources: Map<string, string>,
): Promise<Array<{ path: string; why: string }>> {
  const { redactor, names } = projectSecrets(a.project, allReleases(a.db))
  const found: Array<{ path: string; why: string }> = []
  for (const c of changes) {
    const source = sources.get(c.path)
    if (c.kind === 'D' || c.current?.type !== 'file' || source === undefined) continue
    const why = secretIn((await readFile(source)).toString('latin1'), redactor, names)
    if (why !== undefined) found.push({ path: c.path, why })
  }
  return found
}
