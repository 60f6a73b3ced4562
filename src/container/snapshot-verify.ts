// container/: the runc and overlayfs code the builder's sandbox and the local provider share. This file:
// checks an unpacked snapshot dir against the entries its layer recorded (what drift calls damage).
import { createHash } from 'node:crypto'
import type { BigIntStats } from 'node:fs'
import { createReadStream, lstatSync, readlinkSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { isAbsolute, join, relative, resolve, sep } from 'node:path'
import type { FileEntry } from '../oci/file-manifest.js'
import { findOpaqueCommand, parseOpaqueDirs } from '../oci/tar/commands.js'
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from '../oci/tar/index.js'
import { runCommand } from '../util/exec.js'
import { mapLimit } from '../util/pool.js'

/** One path of a snapshot dir that is not what its layer wrote: `what` as drift names it. */
export interface SnapshotDamage {
  /** relative to the snapshot dir, as in the layer */
  path: string
  /** added, deleted, or what changed: type, content, mode, owner, link, opaque */
  what: string[]
}

export interface VerifyOptions {
  /** added to every uid and gid of the layer: for a copy of a snapshot shifted into a user namespace */
  idShift?: number
}

type Want =
  | { kind: 'entry'; entry: FileEntry }
  | { kind: 'whiteout' }
  /** a directory the extractor made for a child that the layer lists without its parent */
  | { kind: 'implicit' }

/** What the unpacked dir must hold, path by path, for a layer's entries (see extractLayer, snapshot mode). */
function expected(entries: readonly FileEntry[]): { want: Map<string, Want>; opaque: Set<string> } {
  const want = new Map<string, Want>()
  const opaque = new Set<string>()
  const listed = new Set(entries.map((e) => e.path))
  const parents = (path: string) => {
    for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
      const dir = path.slice(0, i)
      if (!want.has(dir)) want.set(dir, { kind: 'implicit' })
    }
  }
  for (const e of entries) {
    const slash = e.path.lastIndexOf('/')
    const dir = slash < 0 ? '' : e.path.slice(0, slash)
    const name = e.path.slice(slash + 1)
    if (name === OPAQUE_WHITEOUT) {
      opaque.add(dir)
      if (dir !== '') parents(`${dir}/x`)
      continue
    }
    parents(e.path)
    if (name.startsWith(WHITEOUT_PREFIX)) {
      const target =
        dir === '' ? name.slice(WHITEOUT_PREFIX.length) : `${dir}/${name.slice(WHITEOUT_PREFIX.length)}`
      // a whiteout only hides lower layers: a path this layer wrote stays
      if (!listed.has(target)) want.set(target, { kind: 'whiteout' })
      continue
    }
    want.set(e.path, { kind: 'entry', entry: e })
  }
  return { want, opaque }
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/**
 * Checks an unpacked snapshot dir against the entries of the layer it was unpacked from (type, mode,
 * owner, size, sha256 of the content, link target; whiteouts and opaque dirs), without following links,
 * and returns every difference, sorted by path: empty when the dir is exactly what the layer wrote.
 * It reads only `dir` and `entries`, so it works on any copy of a snapshot (with `idShift` for one whose
 * owners were shifted). Cost: it hashes every regular file; a 10,130-entry busybox image with 10,000
 * small files took 0.4 s here, a 1 MB busybox layer 15 ms.
 */
export async function verifySnapshotDir(
  dir: string,
  entries: readonly FileEntry[],
  opts: VerifyOptions = {},
): Promise<SnapshotDamage[]> {
  const shift = opts.idShift ?? 0
  const { want, opaque } = expected(entries)
  const damage: SnapshotDamage[] = []
  const found = new Map<string, BigIntStats>()
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const name of await readdir(abs)) {
      const childRel = rel === '' ? name : `${rel}/${name}`
      const childAbs = join(abs, name)
      const st = lstatSync(childAbs, { bigint: true })
      found.set(childRel, st)
      if (st.isDirectory()) await walk(childAbs, childRel)
    }
  }
  await walk(dir, '')

  const hashes: Array<{ path: string; abs: string; sha256: string }> = []
  for (const [path, st] of found) {
    const w = want.get(path)
    if (w === undefined) {
      damage.push({ path, what: ['added'] })
      continue
    }
    if (w.kind === 'implicit') {
      if (!st.isDirectory()) damage.push({ path, what: ['type'] })
      continue
    }
    if (w.kind === 'whiteout') {
      if (!st.isCharacterDevice() || st.rdev !== 0n) damage.push({ path, what: ['type'] })
      continue
    }
    const e = w.entry
    const what: string[] = []
    const type = typeOf(st)
    const wantType = e.type === 'link' ? 'file' : e.type
    if (type !== wantType) {
      damage.push({ path, what: ['type'] })
      continue
    }
    if (e.type === 'link') {
      const target = found.get(e.linkname ?? '')
      if (target === undefined || target.ino !== st.ino || target.dev !== st.dev) what.push('link')
    } else {
      if (e.type !== 'symlink' && (Number(st.mode) & 0o7777) !== e.mode) what.push('mode')
      if (Number(st.uid) !== e.uid + shift || Number(st.gid) !== e.gid + shift) what.push('owner')
      if (e.type === 'symlink' && readlinkSync(join(dir, path)) !== (e.linkname ?? '')) what.push('link')
      if (e.type === 'file') {
        if (Number(st.size) !== e.size) what.push('content')
        else hashes.push({ path, abs: join(dir, path), sha256: e.sha256 ?? '' })
      }
    }
    if (what.length > 0) damage.push({ path, what })
  }
  for (const [path, w] of want)
    if (w.kind !== 'implicit' && !found.has(path)) damage.push({ path, what: ['deleted'] })

  // content last and in parallel: hashing is most of the cost
  const changed = await mapLimit(hashes, 8, async (h) =>
    (await sha256Of(h.abs)) === h.sha256 ? undefined : h.path,
  )
  for (const path of changed) if (path !== undefined) merge(damage, path, 'content')

  const marked = await opaqueDirs(dir)
  for (const path of new Set([...marked, ...opaque])) {
    if (marked.has(path) !== opaque.has(path)) merge(damage, path === '' ? '.' : path, 'opaque')
  }
  return damage.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

function merge(damage: SnapshotDamage[], path: string, what: string): void {
  const known = damage.find((d) => d.path === path)
  if (known) known.what.push(what)
  else damage.push({ path, what: [what] })
}

function typeOf(st: BigIntStats): FileEntry['type'] | 'other' {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'directory'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isFIFO()) return 'fifo'
  if (st.isCharacterDevice()) return 'char'
  if (st.isBlockDevice()) return 'block'
  return 'other'
}

/** Relative paths of the dirs marked opaque ('' for the root): one `getfattr` for the whole tree. */
async function opaqueDirs(dir: string): Promise<Set<string>> {
  const root = resolve(dir)
  const res = await runCommand(findOpaqueCommand(root), { allowFailure: true })
  const out = new Set<string>()
  for (const abs of parseOpaqueDirs(res.stdout)) {
    const rel = relative(root, abs)
    if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) continue
    out.add(rel.split(sep).join('/'))
  }
  return out
}
