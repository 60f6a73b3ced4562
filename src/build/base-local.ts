import { copyFile, mkdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { GrailError, isErrno } from '../errors.js'
import { reusableBlobs } from '../oci/blob-check.js'
import type { Digest } from '../oci/digest.js'
import { parseDigest } from '../oci/digest.js'
import type { GrailHome } from '../home.js'
import { fileDigest } from './digest-cache.js'
import { ANNOTATION_REF_NAME, DOCKER_LAYER_GZIP, MEDIA_LAYER_GZIP } from '../oci/media-types.js'
import type { Descriptor, ImageConfig, ImageIndex, Manifest } from '../oci/types.js'
import type { BaseSource } from '../spec/types.js'
import { getImage, latestImage } from '../state/index.js'
import type { ImageRecord } from '../state/index.js'
import type { BuildEnv, ImageState, LayerDesc } from './env.js'
import { DEFAULT_PATH_ENV } from '../container/process.js'
import { emptyConfig } from './env.js'
import { readPackages } from './packages.js'

type RootfsBase = Extract<BaseSource, { kind: 'rootfs' }>
type OciBase = Extract<BaseSource, { kind: 'oci' }>
type GrailBase = Extract<BaseSource, { kind: 'image' }>

/** A rootfs tarball is identified by its content hash, not its path or mtime. */
export async function rootfsKeyPart(base: RootfsBase, home?: GrailHome): Promise<unknown> {
  try {
    return { kind: 'rootfs', sha256: await fileDigest(home, base.path) }
  } catch (err) {
    if (isErrno(err, 'ENOENT')) {
      throw new GrailError('BASE_NOT_FOUND', `rootfs tarball ${base.path} does not exist`, {
        hint: 'fix the `base.rootfs` path (relative to grail.yaml) or create the tarball',
      })
    }
    throw err
  }
}

/**
 * Checks a rootfs tarball entry by entry (no escapes, no writes through symlinks, no device nodes or
 * fifos: each refused by name), unpacks it with the safe extractor and re-packs it as a normalised layer,
 * so a base made by any tool gets the same deterministic form.
 */
export async function produceRootfsBase(base: RootfsBase, env: BuildEnv, key: string): Promise<ImageState> {
  // loaded here: a build whose base is cached (every no-op build) needs neither
  const [{ checkForeignArchive, extractLayer, newStackState }, { layerFromDir }] = await Promise.all([
    import('../oci/tar/index.js'),
    import('./layers.js'),
  ])
  await checkForeignArchive(base.path, base.path, newStackState())
  const work = env.store.tmpPath('rootfs')
  await mkdir(work, { recursive: true })
  try {
    await extractLayer(base.path, work, { mode: 'apply', label: base.path })
    const packages = await readPackages(work)
    const layer = await layerFromDir(env, work, {})
    const config = emptyConfig()
    config.config.Env = [DEFAULT_PATH_ENV]
    config.rootfs.diff_ids.push(layer.diffId)
    config.history?.push({ created_by: 'grail: rootfs tarball' })
    return { key, layers: [layer], config, packages, parentDigest: null }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

async function readLayoutJson<T>(layout: string, rel: string): Promise<T> {
  try {
    return JSON.parse(await readFile(join(layout, rel), 'utf8')) as T
  } catch (err) {
    if (isErrno(err, 'ENOENT')) {
      throw new GrailError('BASE_NOT_FOUND', `${join(layout, rel)} does not exist`, {
        hint: '`base.oci` must point at an OCI image layout directory (with index.json and blobs/)',
      })
    }
    throw err
  }
}

/** Finds the manifest a `base.oci` entry means: by ref name, or the only one in the layout. */
export async function ociManifestDescriptor(base: OciBase): Promise<Descriptor> {
  const index = await readLayoutJson<ImageIndex>(base.path, 'index.json')
  const refs = index.manifests.map((m) => m.annotations?.[ANNOTATION_REF_NAME]).filter(Boolean)
  const found = base.ref
    ? index.manifests.find((m) => m.annotations?.[ANNOTATION_REF_NAME] === base.ref)
    : index.manifests.length === 1
      ? index.manifests[0]
      : undefined
  if (!found) {
    throw new GrailError(
      'BASE_NOT_FOUND',
      base.ref
        ? `${base.path} has no image tagged "${base.ref}"`
        : `${base.path} holds ${index.manifests.length} images; say which one`,
      {
        hint: refs.length ? `set base.ref to one of: ${refs.join(', ')}` : 'the layout has no tagged images',
      },
    )
  }
  parseDigest(found.digest, `${base.path}/index.json`)
  return found
}

export async function ociKeyPart(base: OciBase): Promise<unknown> {
  return { kind: 'oci', manifest: (await ociManifestDescriptor(base)).digest }
}

/**
 * Imports an image from a local OCI layout: every blob is copied into the store and verified, and every
 * layer, bottom first, is checked entry by entry as it would be unpacked (see `checkForeignArchive`), so
 * an unsafe base is refused by `grail build`, naming the layer and the entry, not later by a deploy.
 */
export async function produceOciBase(base: OciBase, env: BuildEnv, key: string): Promise<ImageState> {
  const { checkForeignArchive, newStackState } = await import('../oci/tar/index.js')
  const desc = await ociManifestDescriptor(base)
  const blob = (d: Digest) => join(base.path, 'blobs', 'sha256', d.slice(7))
  const importBlob = async (d: Digest) => {
    const tmp = env.store.tmpPath('import')
    await copyFile(blob(parseDigest(d, `${base.path} blob`)), tmp)
    await env.store.adoptFile(tmp, d)
  }
  await importBlob(desc.digest)
  const manifest = await env.store.readJson<Manifest>(desc.digest)
  await importBlob(manifest.config.digest)
  const config = await env.store.readJson<ImageConfig>(manifest.config.digest)
  const layers: LayerDesc[] = []
  const stack = newStackState()
  for (const [i, l] of manifest.layers.entries()) {
    await importBlob(l.digest)
    await checkForeignArchive(
      env.store.blobPath(l.digest),
      `${base.path}: layer ${i + 1} (${l.digest})`,
      stack,
    )
    const diffId = config.rootfs.diff_ids[i]
    if (!diffId) {
      throw new GrailError('BASE_INVALID', `${base.path}: image config lists fewer diff_ids than layers`)
    }
    layers.push({
      mediaType: l.mediaType === DOCKER_LAYER_GZIP ? MEDIA_LAYER_GZIP : l.mediaType,
      digest: l.digest,
      diffId,
      size: l.size,
    })
  }
  return {
    key,
    layers,
    config: { ...config, history: config.history ?? [] },
    packages: [],
    parentDigest: null,
  }
}

/**
 * The catalog entry a `base.image` means: the pinned version, else the version the parent's spec builds
 * now (when this run knows it and it is not revoked), else the parent's newest active version. A revoked
 * base is refused, except to find a version already built on it (see keyedVersion).
 */
export function resolveGrailBase(base: GrailBase, env: BuildEnv, forImage: string): ImageRecord {
  const current = env.current?.get(base.image)
  const rec =
    base.version !== undefined
      ? getImage(env.db, base.image, base.version)
      : current !== undefined && (current.status !== 'revoked' || env.revokedParent === true)
        ? current
        : latestImage(env.db, base.image)
  if (!rec) {
    throw new GrailError(
      'BASE_NOT_FOUND',
      `image ${forImage}: base image ${base.image}${base.version ? `@${base.version}` : ''} has not been built`,
      { hint: `run \`grail build ${base.image}\` first (or \`grail build\` to build everything in order)` },
    )
  }
  if (rec.status === 'revoked' && !(env.revokedParent === true && rec === current)) {
    throw new GrailError('BASE_REVOKED', `image ${forImage}: base ${rec.name}@${rec.version} is revoked`, {
      hint: `rebuild ${base.image} or point ${forImage} at a version that is not revoked`,
    })
  }
  return rec
}

/** Starts from another Grail image: its layers, config and packages; the parent is recorded (ancestry). */
export async function produceGrailBase(rec: ImageRecord, env: BuildEnv, key: string): Promise<ImageState> {
  const manifest = await env.store.readJson<Manifest>(rec.digest)
  const config = await env.store.readJson<ImageConfig>(manifest.config.digest)
  const layers = manifest.layers.map((l, i) => ({
    mediaType: l.mediaType,
    digest: l.digest,
    diffId: config.rootfs.diff_ids[i] as Digest,
    size: l.size,
  }))
  if (
    !(await reusableBlobs(
      env.store,
      layers.map((l) => l.digest),
    ))
  ) {
    throw new GrailError(
      'BLOB_CORRUPT',
      `base image ${rec.name} v${rec.version}: a layer blob is missing or corrupt in ${env.store.root}`,
      {
        hint: `rebuild it with \`grail build ${rec.name}\` (when grail.yaml still builds that version), or base this image on another version`,
      },
    )
  }
  return {
    key,
    layers,
    config: { ...config, history: config.history ?? [] },
    packages: rec.packages,
    parentDigest: rec.digest,
  }
}
