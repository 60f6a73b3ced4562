import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../errors.js'
import type { GrailHome } from '../home.js'
import { writeAtomic } from '../util/write-atomic.js'
import { type Digest, digestHex } from './digest.js'
import type { OciStore } from './store.js'
import { listLayer, OPAQUE_WHITEOUT, type TarEntry, WHITEOUT_PREFIX } from './tar/index.js'
import type { Manifest } from './types.js'

/**
 * One path of an image's merged filesystem: what drift compares an instance's files with. It is a tar
 * entry without its times and device numbers (a file touched but unchanged is not a change of content),
 * plus the sha256 (hex) of a regular file's content. `path` is absolute in a manifest; in a layer's list
 * it is relative, as in the tar.
 */
export interface FileEntry extends Omit<TarEntry, 'mtime' | 'devmajor' | 'devminor'> {
  sha256?: string
}

/** The merged file list of an image, by absolute path. */
export type FileManifest = Map<string, FileEntry>

/** One layer's entries as written, whiteouts included (relative paths, as in the tar). */
type LayerList = FileEntry[]

const FORMAT = 1

function manifestDir(home: GrailHome): string {
  return join(home.root, 'file-manifests')
}

async function readCached<T>(path: string): Promise<T | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as { format: number; entries: T }
    return parsed.format === FORMAT ? parsed.entries : undefined
  } catch (err) {
    if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return undefined
    throw err
  }
}

async function writeCached(path: string, entries: unknown): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true })
  await writeAtomic(path, JSON.stringify({ format: FORMAT, entries }))
}

/**
 * A layer's entries with content hashes, listed once per layer digest and cached (layers are shared).
 * Listed only from a blob that hashes to its digest: this is what snapshots and instances are checked
 * against, so it must describe the layer, not whatever bytes are on disk.
 */
export async function layerFileList(home: GrailHome, store: OciStore, layer: Digest): Promise<LayerList> {
  const path = join(manifestDir(home), 'layers', `${digestHex(layer)}.json`)
  const cached = await readCached<LayerList>(path)
  if (cached) return cached
  await store.verifyBlob(layer)
  const listed = await listLayer(store.blobPath(layer))
  const entries: LayerList = [...listed.values()].map((e) => ({
    path: e.path,
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: e.type === 'file' ? e.size : 0,
    ...(e.sha256 !== undefined ? { sha256: e.sha256 } : {}),
    ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
  }))
  await writeCached(path, entries)
  return entries
}

function removeBelow(files: FileManifest, dir: string, andSelf: boolean): void {
  if (andSelf) files.delete(dir)
  const prefix = dir === '/' ? '/' : `${dir}/`
  for (const key of files.keys()) if (key.startsWith(prefix)) files.delete(key)
}

/**
 * Applies layers bottom to top the way an unpacker does: an opaque whiteout empties its directory of what
 * lower layers put there, `.wh.name` removes `name` and everything under it, any other entry is set.
 */
export function mergeLayers(layers: readonly LayerList[]): FileManifest {
  const files: FileManifest = new Map()
  for (const list of layers) {
    for (const e of list) {
      const slash = e.path.lastIndexOf('/')
      const dir = slash < 0 ? '' : e.path.slice(0, slash)
      const name = e.path.slice(slash + 1)
      if (name === OPAQUE_WHITEOUT) removeBelow(files, `/${dir}`, false)
      else if (name.startsWith(WHITEOUT_PREFIX))
        removeBelow(files, `/${dir ? `${dir}/` : ''}${name.slice(WHITEOUT_PREFIX.length)}`, true)
    }
    for (const e of list) {
      const name = e.path.slice(e.path.lastIndexOf('/') + 1)
      if (name.startsWith(WHITEOUT_PREFIX)) continue
      files.set(`/${e.path}`, { ...e, path: `/${e.path}` })
    }
  }
  return files
}

/** Manifests used last in this process: a scan of many instances of one image parses its manifest once. */
const recent = new Map<string, FileManifest>()
const RECENT_MAX = 4

function remember(key: string, files: FileManifest): FileManifest {
  recent.delete(key)
  recent.set(key, files)
  for (const k of recent.keys()) {
    if (recent.size <= RECENT_MAX) break
    recent.delete(k)
  }
  return files
}

/**
 * The file manifest of an image (path, type, mode, owner, size, sha256), computed from its layers on first
 * use, recorded under the home and reused: `grail build` records it for every image it writes.
 */
export async function imageFileManifest(
  home: GrailHome,
  store: OciStore,
  image: Digest,
): Promise<FileManifest> {
  const path = join(manifestDir(home), 'images', `${digestHex(image)}.json`)
  const hot = recent.get(path)
  if (hot) return hot
  const cached = await readCached<FileEntry[]>(path)
  if (cached) return remember(path, new Map(cached.map((e) => [e.path, e])))
  const manifest = await store.readJson<Manifest>(image)
  const lists: LayerList[] = []
  for (const layer of manifest.layers) lists.push(await layerFileList(home, store, layer.digest))
  const files = remember(path, mergeLayers(lists))
  await writeCached(
    path,
    [...files.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  )
  return files
}

/** Which layer (0-based, bottom first) last wrote `path` of an image, for reading its original content. */
export async function layerOfPath(
  home: GrailHome,
  store: OciStore,
  image: Digest,
  path: string,
): Promise<Digest | undefined> {
  const manifest = await store.readJson<Manifest>(image)
  const rel = path.replace(/^\/+/, '')
  for (let i = manifest.layers.length - 1; i >= 0; i--) {
    const layer = manifest.layers[i] as Manifest['layers'][number]
    const list = await layerFileList(home, store, layer.digest)
    if (list.some((e) => e.path === rel)) return layer.digest
  }
  return undefined
}

/** Entries of two manifests that differ (or exist in one only), by path; empty when the images match. */
export function compareManifests(a: FileManifest, b: FileManifest): Array<{ path: string; what: string[] }> {
  const out: Array<{ path: string; what: string[] }> = []
  for (const path of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(path)
    const y = b.get(path)
    if (!x || !y) {
      out.push({ path, what: [x ? 'only-in-first' : 'only-in-second'] })
      continue
    }
    const what = entryDifferences(x, y)
    if (what.length > 0) out.push({ path, what })
  }
  return out
}

/** What differs between two entries of the same path: type, content, mode, owner, link. */
export function entryDifferences(x: Omit<FileEntry, 'path'>, y: Omit<FileEntry, 'path'>): string[] {
  const what: string[] = []
  if (x.type !== y.type) what.push('type')
  else if (x.size !== y.size || (x.sha256 ?? '') !== (y.sha256 ?? '')) what.push('content')
  if (x.mode !== y.mode) what.push('mode')
  if (x.uid !== y.uid || x.gid !== y.gid) what.push('owner')
  if ((x.linkname ?? '') !== (y.linkname ?? '')) what.push('link')
  return what
}
