import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, readFile, readdir, readlink, realpath } from 'node:fs/promises'
import { basename, join, posix, relative, sep } from 'node:path'
import { GrailError, isErrno } from '../errors.js'
import type { PackEntry } from '../oci/tar/index.js'
import type { Step } from '../spec/types.js'
import { compileGlobs } from '../util/glob.js'

export type CopyStep = Extract<Step, { kind: 'copy' }>

/** One file of the build context as it will appear in the image, with its content hash. */
export interface CopyEntry extends PackEntry {
  sha256?: string
}

/** Names never copied from a context root: Grail's own state and lock, and the repository's. */
const ALWAYS_EXCLUDED = ['.grail', '.git', 'grail.lock']

/** Files up to this size are hashed from one read: a stream costs more than the hash for a small file. */
const READ_WHOLE = 1 << 20

async function hashFile(path: string, size: number): Promise<string> {
  const h = createHash('sha256')
  if (size <= READ_WHOLE) return h.update(await readFile(path)).digest('hex')
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer)
  return h.digest('hex')
}

/** File modes are normalised (0644, or 0755 if executable) so checkouts with other umasks agree. */
function normaliseMode(mode: number, isDir: boolean, override: number | undefined): number {
  if (override !== undefined) return override
  if (isDir) return 0o755
  return mode & 0o111 ? 0o755 : 0o644
}

function parseOwner(owner: string | undefined, where: string): { uid: number; gid: number } {
  if (owner === undefined) return { uid: 0, gid: 0 }
  const m = /^(\d+)(?::(\d+))?$/.exec(owner)
  if (!m) {
    throw new GrailError('BAD_OWNER', `${where}: owner "${owner}" must be numeric uid[:gid]`, {
      hint: 'use numbers, for example owner: "1000:1000", so the layer does not depend on a passwd file',
    })
  }
  const uid = Number(m[1])
  return { uid, gid: m[2] === undefined ? uid : Number(m[2]) }
}

async function resolveSource(context: string, from: string, where: string): Promise<string> {
  const abs = join(context, from)
  let real: string
  try {
    real = await realpath(abs)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) {
      throw new GrailError(
        'COPY_SOURCE_MISSING',
        `${where}: ${from} does not exist in the build context ${context}`,
        {
          hint: 'copy sources are relative to the build context (the directory of grail.yaml unless `context` is set)',
        },
      )
    }
    throw err
  }
  const ctxReal = await realpath(context)
  if (real !== ctxReal && !real.startsWith(ctxReal + sep)) {
    throw new GrailError(
      'COPY_OUTSIDE_CONTEXT',
      `${where}: ${from} resolves outside the build context (${real})`,
      {
        hint: 'copy only files inside the build context; a symlink may not lead out of it',
      },
    )
  }
  return abs
}

/**
 * Lists what a copy step puts into the image: paths under `to`, normalised metadata (mode, owner, epoch
 * mtime comes later) and the sha256 of every file. Symlinks are copied as symlinks, never followed.
 */
export async function collectCopy(step: CopyStep, context: string, where: string): Promise<CopyEntry[]> {
  const owner = parseOwner(step.owner, where)
  const excluded = compileGlobs(step.exclude)
  const out: CopyEntry[] = []
  const dest = step.to.replace(/^\/+/, '').replace(/\/+$/, '')

  const add = async (abs: string, target: string, relForExclude: string) => {
    if (relForExclude && excluded(relForExclude)) return
    const st = await lstat(abs)
    const base = { path: target, uid: owner.uid, gid: owner.gid, mtime: 0, size: 0 }
    if (st.isDirectory()) {
      if (target) out.push({ ...base, type: 'directory', mode: normaliseMode(st.mode, true, step.mode) })
      const names = (await readdir(abs)).sort()
      for (const name of names) {
        if (abs === context && ALWAYS_EXCLUDED.includes(name)) continue
        await add(
          join(abs, name),
          target ? posix.join(target, name) : name,
          relForExclude ? `${relForExclude}/${name}` : name,
        )
      }
    } else if (st.isSymbolicLink()) {
      out.push({ ...base, type: 'symlink', mode: 0o777, linkname: await readlink(abs) })
    } else if (st.isFile()) {
      out.push({
        ...base,
        type: 'file',
        mode: normaliseMode(st.mode, false, step.mode),
        size: st.size,
        source: abs,
        sha256: await hashFile(abs, st.size),
      })
    } else {
      throw new GrailError(
        'COPY_UNSUPPORTED',
        `${where}: ${relative(context, abs)} is not a file, directory or symlink`,
        {
          hint: 'sockets, fifos and devices cannot be copied into an image; exclude them',
        },
      )
    }
  }

  for (const from of step.from) {
    const abs = await resolveSource(context, from, where)
    const st = await lstat(abs)
    const intoDir = step.to.endsWith('/') || step.from.length > 1
    if (st.isDirectory()) {
      // a directory's contents go into `to`, as with cp -r src/. dest; `to` itself is the builder's
      // business, since it may already exist in the image with its own mode (/tmp is 1777)
      const names = (await readdir(abs)).sort()
      for (const name of names) {
        if (abs === context && ALWAYS_EXCLUDED.includes(name)) continue
        await add(join(abs, name), dest ? posix.join(dest, name) : name, name)
      }
    } else {
      await add(abs, intoDir ? posix.join(dest, basename(abs)) : dest, '')
    }
  }
  return dedupe(out)
}

/** Later sources win over earlier ones for the same path, as successive copies would. */
function dedupe(entries: CopyEntry[]): CopyEntry[] {
  const byPath = new Map<string, CopyEntry>()
  for (const e of entries) byPath.set(e.path, e)
  return [...byPath.values()].filter((e) => e.path !== '')
}

/** What of the collected files goes into the step's cache key: everything but host paths. */
export function copyInputsDigest(entries: readonly CopyEntry[]): string {
  const h = createHash('sha256')
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    h.update(
      `${e.path}\0${e.type}\0${e.mode}\0${e.uid}:${e.gid}\0${e.size}\0${e.sha256 ?? ''}\0${e.linkname ?? ''}\n`,
    )
  }
  return h.digest('hex')
}
