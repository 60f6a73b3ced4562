import type { Readable } from 'node:stream'
import { createTwoFilesPatch } from 'diff'
import type { GrailHome } from '../home.js'
import type { Digest } from '../oci/digest.js'
import {
  entryDifferences,
  type FileEntry,
  type FileManifest,
  imageFileManifest,
  layerOfPath,
} from '../oci/file-manifest.js'
import type { OciStore } from '../oci/store.js'
import { readLayer } from '../oci/tar/index.js'
import type { CurrentFile, FileChange, RuntimeProvider } from '../runtime/types.js'
import type { HotfixChange, HotfixRecord } from '../state/index.js'
import { compileGlobs } from '../util/glob.js'
import type { FileFinding } from './types.js'

/** Text files up to this size get a unified diff in the report. */
export const DIFF_MAX_BYTES = 64 * 1024
/** At most this many diffs per instance: a report is for reading. */
const DIFFS_PER_INSTANCE = 20

export interface FileDriftInput {
  home: GrailHome
  store: OciStore
  provider: RuntimeProvider
  instance: string
  image: Digest
  /** the service's drift.ignore globs */
  ignore: readonly string[]
  /** hotfixes of this instance (any status) */
  hotfixes: readonly HotfixRecord[]
  now: number
  /** read contents and add unified diffs for small text files */
  withDiffs: boolean
}

export interface FileDrift {
  files: FileFinding[]
  touched: number
  /** the raw changes, for hotfix and capture */
  changes: FileChange[]
  manifest: FileManifest
}

/** True when a change is exactly what a hotfix recorded for that path (same kind and same result). */
export function sameChange(c: FileChange, h: HotfixChange): boolean {
  if (c.kind !== h.kind || c.path !== h.path) return false
  if (c.kind === 'D') return true
  const cur = c.current
  if (cur === undefined) return false
  return (
    cur.type === h.type &&
    cur.mode === h.mode &&
    cur.uid === h.uid &&
    cur.gid === h.gid &&
    (cur.sha256 ?? '') === (h.sha256 ?? '') &&
    (cur.linkname ?? '') === (h.linkname ?? '')
  )
}

/** What a hotfix stores of a change: enough to recognise it later, never the content. */
export function hotfixChangeOf(c: FileChange): HotfixChange {
  return { kind: c.kind, path: c.path, ...(c.current ?? ({} as Partial<CurrentFile>)) }
}

const asEntry = (c: CurrentFile): Omit<FileEntry, 'path'> => ({
  type: c.type,
  mode: c.mode,
  uid: c.uid,
  gid: c.gid,
  size: c.size,
  ...(c.sha256 !== undefined ? { sha256: c.sha256 } : {}),
  ...(c.linkname !== undefined ? { linkname: c.linkname } : {}),
})

/**
 * An instance's file drift: the provider's added, changed and deleted paths (volumes and deploy files are
 * never among them), compared with the image's file manifest so that a file only touched is told from a
 * real change, then classified: expected under an ignore glob, excused when a live hotfix left exactly
 * this change, unexplained otherwise.
 */
export async function fileDrift(input: FileDriftInput): Promise<FileDrift> {
  const manifest = await imageFileManifest(input.home, input.store, input.image)
  const changes = await input.provider.diff({ id: input.instance, provider: input.provider.name })
  const ignored = compileGlobs(input.ignore)
  const live = input.hotfixes.filter((h) => h.status === 'recorded' && Date.parse(h.expiresAt) > input.now)
  const files: FileFinding[] = []
  let touched = 0
  let diffs = 0
  for (const c of changes) {
    const original = manifest.get(c.path)
    let kind = c.kind
    let what: string[] = []
    if (c.kind === 'D') what = ['deleted']
    else if (original === undefined) kind = 'A'
    else if (c.current !== undefined) {
      kind = 'C'
      what = entryDifferences(original, asEntry(c.current))
      if (what.length === 0) {
        touched++
        continue
      }
    }
    const finding: FileFinding = { kind, path: c.path, what, class: 'unexplained' }
    const excusedBy = live.find((h) => h.changes.some((hc) => sameChange(c, hc)))
    if (ignored(c.path.slice(1))) finding.class = 'expected'
    else if (excusedBy) {
      finding.class = 'excused'
      finding.hotfix = excusedBy.id
    }
    if (
      input.withDiffs &&
      finding.class !== 'expected' &&
      kind === 'C' &&
      what.includes('content') &&
      diffs < DIFFS_PER_INSTANCE
    ) {
      const text = await textDiff(input, c, original)
      if (text !== undefined) {
        finding.diff = text
        diffs++
      }
    }
    files.push(finding)
  }
  return { files, touched, changes, manifest }
}

async function textDiff(
  input: FileDriftInput,
  c: FileChange,
  original: FileEntry | undefined,
): Promise<string | undefined> {
  if (
    original?.type !== 'file' ||
    c.current?.type !== 'file' ||
    original.size > DIFF_MAX_BYTES ||
    c.current.size > DIFF_MAX_BYTES
  )
    return undefined
  const h = { id: input.instance, provider: input.provider.name }
  const after = await readStream(await input.provider.readFile(h, c.path), DIFF_MAX_BYTES)
  // it grew past the limit since the diff: no text diff rather than half of one
  if (after === undefined) return undefined
  const before = await readImageFile(input.home, input.store, input.image, c.path)
  if (before === undefined || isBinary(before) || isBinary(after)) return undefined
  return createTwoFilesPatch(
    `image${c.path}`,
    `instance${c.path}`,
    before.toString('utf8'),
    after.toString('utf8'),
    undefined,
    undefined,
    { context: 3 },
  )
}

/** All of a stream, or undefined (and the stream destroyed) once it passes `max` bytes. */
async function readStream(stream: Readable, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream) {
    size += (chunk as Buffer).length
    if (size > max) {
      stream.destroy()
      return undefined
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

const isBinary = (b: Buffer): boolean => b.subarray(0, 8000).includes(0)

class Found extends Error {}

/** The content of a regular file as the image has it (read from the layer that last wrote it). */
export async function readImageFile(
  home: GrailHome,
  store: OciStore,
  image: Digest,
  path: string,
): Promise<Buffer | undefined> {
  const layer = await layerOfPath(home, store, image, path)
  if (layer === undefined) return undefined
  const rel = path.replace(/^\/+/, '')
  let found: Buffer | undefined
  try {
    await readLayer(store.blobPath(layer), async (entry, content) => {
      if (entry.path !== rel || entry.type !== 'file') return
      const chunks: Buffer[] = []
      for await (const chunk of content) chunks.push(chunk as Buffer)
      found = Buffer.concat(chunks)
      throw new Found()
    })
  } catch (err) {
    if (!(err instanceof Found)) throw err
  }
  return found
}
