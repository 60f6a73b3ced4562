import { GrailError } from '../errors.js'

export const LOCK_FILE = 'grail.lock'
/**
 * 2: no `version` per image. Version 1 recorded the local catalog's version number, which differs between
 * machines that built the same digest, so the lock differed on every clean checkout.
 * An image's optional `base` pin (`base: {registry}`) needs no new version: a Grail too old to know it
 * cannot load a spec with such a base, so it never builds the image and never rewrites its entry.
 */
export const LOCK_VERSION = 2
const OLDEST_READABLE = 1

/**
 * What one image of the spec resolved to when it was last built: meant for git, read by `apply --locked`.
 * Every field is a function of the spec, its sources and the archive (digests, never a local counter,
 * a time, a host path or a machine name), so every machine that builds the same commit writes the same
 * bytes.
 */
export interface LockedImage {
  digest: string
  /** digest of the image's definition in the spec (base and steps, paths relative to the project) */
  spec: string
  /** the parent image of a `base: {image}` */
  parent: string | null
  /**
   * the manifest a `base: {registry}` resolved to: its reference as the spec wrote it and the digest it
   * was pinned to. A plain build keeps building on this digest while the spec names the same ref;
   * `build --refresh` resolves the tag again. Absent for every other base.
   */
  base?: LockedBase
  /** layer digests, base layers first */
  layers: string[]
  /** Debian packages as resolved (name=version:architecture) */
  packages: string[]
}

/** A registry base's pin (see `LockedImage.base`). */
export interface LockedBase {
  ref: string
  digest: string
}

export interface Lock {
  lockVersion: number
  project: string
  images: Record<string, LockedImage>
}

const DIGEST = /^sha256:[0-9a-f]{64}$/

function invalid(file: string, what: string): GrailError {
  return new GrailError('LOCK_INVALID', `${file}: ${what}`, {
    hint: 'restore it from git (`git checkout -- grail.lock`), or fix the entry named; deleting it and running `grail build` writes a new one, but only with the images this build builds',
  })
}

/** `file:line:col` of a JSON.parse error's "at position N", when V8 gives one. */
function where(file: string, text: string, err: Error): string {
  const m = /at position (\d+)/.exec(err.message)
  const at = m ? Number(m[1]) : err.message.includes('end of JSON input') ? text.length : undefined
  if (at === undefined) return file
  const before = text.slice(0, at).split('\n')
  return `${file}:${before.length}:${(before.at(-1)?.length ?? 0) + 1}`
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function stringList(file: string, name: string, key: string, v: unknown, pattern?: RegExp): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || (pattern && !pattern.test(x))))
    throw invalid(file, `images.${name}.${key} is not a list of ${pattern ? 'digests' : 'strings'}`)
  return v as string[]
}

/** One entry, rebuilt field by field: a version-1 `version` (or any other extra key) is dropped. */
function lockedEntry(file: string, name: string, raw: unknown): LockedImage {
  if (!isRecord(raw)) throw invalid(file, `images.${name} is not an object`)
  for (const key of ['digest', 'spec'] as const) {
    const v = raw[key]
    if (typeof v !== 'string' || !DIGEST.test(v))
      throw invalid(file, `images.${name}.${key} is not a sha256 digest`)
  }
  const parent = raw.parent ?? null
  if (parent !== null && (typeof parent !== 'string' || !DIGEST.test(parent)))
    throw invalid(file, `images.${name}.parent is neither null nor a sha256 digest`)
  const base = raw.base
  if (
    base !== undefined &&
    (!isRecord(base) ||
      typeof base.ref !== 'string' ||
      base.ref === '' ||
      typeof base.digest !== 'string' ||
      !DIGEST.test(base.digest))
  )
    throw invalid(file, `images.${name}.base is not {"ref": "<host/repo:tag>", "digest": "<sha256 digest>"}`)
  return {
    digest: raw.digest as string,
    spec: raw.spec as string,
    parent,
    ...(base === undefined ? {} : { base: { ref: base.ref as string, digest: base.digest as string } }),
    layers: stringList(file, name, 'layers', raw.layers, DIGEST),
    packages: stringList(file, name, 'packages', raw.packages ?? []),
  }
}

/**
 * Reads the text of a grail.lock (`file` names it in errors). Locks of version 1 are read too, their
 * version numbers ignored: only digests identify an image. A lock of a newer format is refused rather
 * than guessed at, and so is one that is not a lock.
 */
export function parseLock(text: string, file: string): Lock {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw invalid(where(file, text, err as Error), `not valid JSON: ${(err as Error).message}`)
  }
  if (!isRecord(raw)) throw invalid(file, 'not a lock (expected a JSON object)')
  const v = raw.lockVersion
  if (typeof v !== 'number' || !Number.isInteger(v) || v < OLDEST_READABLE)
    throw invalid(file, `unknown lock format (lockVersion ${JSON.stringify(v)})`)
  if (v > LOCK_VERSION) {
    throw new GrailError(
      'LOCK_TOO_NEW',
      `${file} has lockVersion ${v}, a format newer than this Grail reads (${OLDEST_READABLE} to ${LOCK_VERSION})`,
      { hint: 'it was written by a newer Grail: upgrade Grail (`grail --version` shows this one)' },
    )
  }
  if (typeof raw.project !== 'string') throw invalid(file, 'project is missing')
  if (!isRecord(raw.images)) throw invalid(file, 'images is missing')
  const images: Record<string, LockedImage> = {}
  for (const [name, entry] of Object.entries(raw.images)) images[name] = lockedEntry(file, name, entry)
  return { lockVersion: v, project: raw.project, images }
}

/**
 * The bytes of a lock: the current lockVersion, images sorted by name (code-unit order, not the
 * locale's), fields in a fixed order, two-space JSON and a final newline, so equal locks are equal files.
 */
export function serialiseLock(project: string, images: Record<string, LockedImage>): string {
  const sorted: Record<string, LockedImage> = {}
  for (const name of Object.keys(images).sort()) {
    const e = images[name] as LockedImage
    sorted[name] = {
      digest: e.digest,
      spec: e.spec,
      parent: e.parent,
      ...(e.base === undefined ? {} : { base: { ref: e.base.ref, digest: e.base.digest } }),
      layers: [...e.layers],
      packages: [...e.packages].sort(),
    }
  }
  const lock: Lock = { lockVersion: LOCK_VERSION, project, images: sorted }
  return `${JSON.stringify(lock, null, 2)}\n`
}
