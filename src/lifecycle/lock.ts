import { readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import type { BuiltImage } from '../build/builder.js'
import { GrailError, isErrno } from '../errors.js'
import { canonicalJson } from '../oci/canonical-json.js'
import { sha256 } from '../oci/digest.js'
import type { OciStore } from '../oci/store.js'
import type { Manifest } from '../oci/types.js'
import type { ImageSpec, Project } from '../spec/types.js'
import type { Db } from '../state/index.js'
import { listImages } from '../state/index.js'
import { writeAtomic } from '../util/write-atomic.js'
import type { Lock, LockedBase, LockedImage } from './lock-file.js'
import { LOCK_FILE, LOCK_VERSION, parseLock, serialiseLock } from './lock-file.js'

export { LOCK_FILE, LOCK_VERSION, parseLock, serialiseLock } from './lock-file.js'
export type { Lock, LockedBase, LockedImage } from './lock-file.js'

/** A built image, with the registry manifest its `base: {registry}` was built on (see runBuild). */
export type LockableImage = BuiltImage & { registryBase?: LockedBase }

export const lockPath = (project: Pick<Project, 'dir'>): string => join(project.dir, LOCK_FILE)

/** The digest of an image's definition, independent of where the project is checked out. */
export function imageSpecDigest(project: Project, image: ImageSpec): string {
  const rel = (p: string): string => relative(project.dir, p) || '.'
  const base =
    image.base.kind === 'rootfs' || image.base.kind === 'oci'
      ? { ...image.base, path: rel(image.base.path) }
      : image.base
  return sha256(canonicalJson({ ...image, context: rel(image.context), base }))
}

/** The project's grail.lock, or undefined when there is none (see `parseLock` for what it accepts). */
export async function readLock(project: Pick<Project, 'dir'>): Promise<Lock | undefined> {
  return (await readLockText(project))?.lock
}

async function readLockText(
  project: Pick<Project, 'dir'>,
): Promise<{ lock: Lock; text: string } | undefined> {
  let text: string
  try {
    text = await readFile(lockPath(project), 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined
    throw err
  }
  return { lock: parseLock(text, lockPath(project)), text }
}

/**
 * The pin of a `base: {registry}`: what this build resolved, else (a caller that did not resolve it, such
 * as a recovered patch build) the previous pin while the spec names the same ref, else the ref's own
 * digest. Undefined for every other base.
 */
function basePin(
  spec: ImageSpec,
  built: LockableImage,
  previous: LockedImage | undefined,
): LockedBase | undefined {
  if (spec.base.kind !== 'registry') return undefined
  const ref = spec.base.ref
  if (built.registryBase?.ref === ref) return built.registryBase
  if (previous?.base?.ref === ref) return previous.base
  const at = ref.indexOf('@')
  return at < 0 ? undefined : { ref, digest: ref.slice(at + 1) }
}

async function lockedEntry(
  project: Project,
  store: OciStore,
  built: LockableImage,
  previous: LockedImage | undefined,
): Promise<LockedImage> {
  const rec = built.record
  const manifest = await store.readJson<Manifest>(rec.digest)
  const spec = project.images[rec.name] as ImageSpec
  const base = basePin(spec, built, previous)
  return {
    digest: rec.digest,
    spec: imageSpecDigest(project, spec),
    parent: rec.parentDigest,
    ...(base === undefined ? {} : { base }),
    layers: manifest.layers.map((l) => l.digest),
    packages: rec.packages.map((p) => `${p.name}=${p.version}:${p.architecture}`).sort(),
  }
}

/**
 * Writes grail.lock after a build: the images just built replace their entries (with the pin of a
 * registry base), entries of images the spec no longer has are dropped, the rest are kept. Written atomically, in a stable order (diffable).
 */
export async function writeLock(
  project: Project,
  store: OciStore,
  built: LockableImage[],
): Promise<{ changed: string[]; upgraded: boolean }> {
  // a lock that does not parse stops the build and is left as it is: replacing it would drop the pins
  // of every image this build did not build, and a newer Grail's lock is not downgraded either
  const read = await readLockText(project)
  const previous = read?.lock
  const images: Record<string, LockedImage> = {}
  for (const [name, entry] of Object.entries(previous?.images ?? {}))
    if (project.images[name]) images[name] = entry
  const changed: string[] = []
  for (const b of built) {
    const entry = await lockedEntry(project, store, b, previous?.images[b.name])
    const was = images[b.name]
    if (was?.digest !== entry.digest || was?.base?.digest !== entry.base?.digest) changed.push(b.name)
    images[b.name] = entry
  }
  const text = serialiseLock(project.name, images)
  // an unchanged lock is not written again (a no-op build would pay two fsyncs for it)
  if (text !== read?.text) await writeAtomic(lockPath(project), text)
  return { changed, upgraded: previous !== undefined && previous.lockVersion < LOCK_VERSION }
}

/**
 * The images `apply --locked` deploys: for each image the environment's services use, the lock's digest,
 * after checking that the lock was written for this spec and that the image is in the local catalog.
 */
export function lockedImages(
  project: Project,
  lock: Lock | undefined,
  db: Db,
  names: string[],
): Record<string, { name: string; version: number; digest: string }> {
  if (!lock) {
    throw new GrailError(
      'LOCK_MISSING',
      `${lockPath(project)} does not exist; --locked deploys exactly the lock`,
      {
        hint: 'run `grail build` to write grail.lock, commit it, and deploy with `grail apply --locked`',
      },
    )
  }
  const out: Record<string, { name: string; version: number; digest: string }> = {}
  const catalog = listImages(db)
  for (const name of names) {
    const entry = lock.images[name]
    const spec = project.images[name]
    if (!entry || !spec) {
      throw new GrailError(
        'LOCK_MISMATCH',
        `${LOCK_FILE} has no entry for image ${name}, which the spec deploys`,
        {
          hint: 'the lock was written for another version of grail.yaml: run `grail build` and commit grail.lock',
        },
      )
    }
    if (entry.spec !== imageSpecDigest(project, spec)) {
      throw new GrailError(
        'LOCK_MISMATCH',
        `${LOCK_FILE} does not match ${relative(project.dir, project.file)}: image ${name} is defined differently than when the lock was written`,
        {
          hint: 'run `grail build` to update grail.lock (and commit it), or check out the spec that goes with the lock',
        },
      )
    }
    // the lock names a digest; which version number this machine's catalog gave it is local
    const rec = catalog.find((i) => i.name === name && i.digest === entry.digest)
    if (!rec) {
      throw new GrailError(
        'LOCK_IMAGE_MISSING',
        `image ${name} ${entry.digest} of ${LOCK_FILE} is not in this machine's catalog`,
        {
          hint: `run \`grail build ${name}\` (builds are reproducible: the same spec and sources give this digest again), or declare the registry it was pushed to (\`registry:\`, docs/registry.md) and --locked pulls it`,
        },
      )
    }
    if (rec.status === 'revoked') {
      throw new GrailError(
        'LOCK_IMAGE_REVOKED',
        `image ${name} ${entry.digest} of ${LOCK_FILE} (here v${rec.version}) is revoked: ${rec.statusReason}`,
        {
          hint: 'build a new version, commit the new grail.lock and deploy that',
        },
      )
    }
    out[name] = { name, version: rec.version, digest: entry.digest }
  }
  return out
}

/**
 * The image digests the project's grail.lock names: gc roots, since `apply --locked` (or a checkout of
 * that commit) deploys them. A lock that cannot be read stops gc rather than being taken as empty.
 */
export async function lockedDigests(
  project: Pick<Project, 'dir'>,
): Promise<Array<{ name: string; digest: string }>> {
  const lock = await readLock(project)
  return Object.entries(lock?.images ?? {}).map(([name, e]) => ({ name, digest: e.digest }))
}
