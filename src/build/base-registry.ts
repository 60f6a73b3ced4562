import { GrailError } from '../errors.js'
import type { Digest } from '../oci/digest.js'
import { DOCKER_LAYER_GZIP, MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR } from '../oci/media-types.js'
import type { ImageConfig } from '../oci/types.js'
import type { BaseSource } from '../spec/types.js'
import type { BuildEnv, ImageState, LayerDesc } from './env.js'
import { parseBaseRef } from './registry-base.js'

type RegistryBase = Extract<BaseSource, { kind: 'registry' }>

/** Layer types a base may have: what the unpacker reads (gzip is told by its magic bytes, not the type). */
const LAYER_TYPES = new Set([MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR, DOCKER_LAYER_GZIP])

/**
 * Pulls the manifest `digest` of a `base: {registry}` into the store (every blob verified as it streams)
 * and takes its layers and config as `produceOciBase` takes a layout's: every layer, bottom first, is
 * checked entry by entry as it would be unpacked, so an unsafe base is refused by `grail build`.
 */
export async function produceRegistryBase(
  base: RegistryBase,
  digest: Digest,
  env: BuildEnv,
  key: string,
): Promise<ImageState> {
  if (!env.registry) throw new Error(`a registry base was produced without BuildEnv.registry (this is a bug)`)
  const [{ checkForeignArchive, newStackState }, { pullImage }] = await Promise.all([
    import('../oci/tar/index.js'),
    import('../oci/registry/transfer.js'),
  ])
  const ref = await parseBaseRef(base.ref)
  const client = await env.registry.client(ref.registry)
  const where = `${ref.registry}/${ref.repository}@${digest}`
  let pulled: Awaited<ReturnType<typeof pullImage>>
  try {
    pulled = await pullImage(client, ref.repository, digest, env.store, { platform: env.registry.platform })
  } catch (err) {
    if (!(err instanceof GrailError) || err.code !== 'REGISTRY_NOT_FOUND' || ref.digest !== undefined)
      throw err
    // the digest came from grail.lock (or this run's resolution), and the registry has dropped it
    throw new GrailError(
      'REGISTRY_NOT_FOUND',
      `base ${base.ref} is pinned to ${digest} (grail.lock), which registry ${ref.registry} no longer has`,
      {
        hint: 'push that image back, or run `grail build --refresh` to pin the image the tag names now (and commit grail.lock)',
      },
    )
  }
  const config = await env.store.readJson<ImageConfig>(pulled.configDigest)
  const diffIds = config.rootfs?.diff_ids ?? []
  if (diffIds.length !== pulled.manifest.layers.length) {
    throw new GrailError(
      'BASE_INVALID',
      `${where}: the image config lists ${diffIds.length} diff_ids for ${pulled.manifest.layers.length} layers`,
      { hint: 'the image is malformed: rebuild it, or base this image on another one' },
    )
  }
  const layers: LayerDesc[] = []
  const stack = newStackState()
  for (const [i, l] of pulled.manifest.layers.entries()) {
    if (!LAYER_TYPES.has(l.mediaType)) {
      throw new GrailError('BASE_INVALID', `${where}: layer ${i + 1} (${l.digest}) is ${l.mediaType}`, {
        hint: `Grail unpacks ${MEDIA_LAYER_TAR}, ${MEDIA_LAYER_GZIP} and ${DOCKER_LAYER_GZIP} layers: push the base with gzip layers (e.g. skopeo copy --dest-compress-format gzip)`,
      })
    }
    await checkForeignArchive(env.store.blobPath(l.digest), `${where}: layer ${i + 1} (${l.digest})`, stack)
    layers.push({
      // the same bytes: a Docker v2 gzip layer is an OCI gzip layer
      mediaType: l.mediaType === DOCKER_LAYER_GZIP ? MEDIA_LAYER_GZIP : l.mediaType,
      digest: l.digest,
      diffId: diffIds[i] as Digest,
      size: l.size,
    })
  }
  return {
    key,
    layers,
    config: { ...config, config: config.config ?? {}, history: config.history ?? [] },
    packages: [],
    parentDigest: null,
  }
}
