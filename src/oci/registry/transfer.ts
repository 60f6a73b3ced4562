import { readFile } from 'node:fs/promises'
import { GrailError } from '../../errors.js'
import type { Digest } from '../digest.js'
import { isDigest, sha256 } from '../digest.js'
import { DOCKER_MANIFEST, MEDIA_INDEX, MEDIA_MANIFEST } from '../media-types.js'
import type { OciStore } from '../store.js'
import { blobSize } from '../store.js'
import type { Descriptor, ImageIndex, Manifest } from '../types.js'
import { DOCKER_MANIFEST_LIST } from './client.js'
import type { RegistryClient, TransferEvent } from './types.js'

const INDEX_TYPES = new Set([MEDIA_INDEX, DOCKER_MANIFEST_LIST])
const MANIFEST_TYPES = new Set([MEDIA_MANIFEST, DOCKER_MANIFEST])

export interface PushOptions {
  tags?: string[]
  /** repositories of the same registry to mount blobs from before uploading them */
  mountFrom?: string[]
  /** blobs in flight at once (default 4) */
  concurrency?: number
  onEvent?: (e: TransferEvent) => void
}

export interface PullOptions {
  /** the platform to pick from an index (default linux/amd64) */
  platform?: { os: string; architecture: string }
  concurrency?: number
  onEvent?: (e: TransferEvent) => void
}

/** Runs `fn` over `items` with at most `limit` at once; the first failure rejects (the rest finish). */
export async function eachLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0
  let failed: { err: unknown } | undefined
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++] as T
      try {
        await fn(item)
      } catch (err) {
        failed ??= { err }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  if (failed) throw failed.err
}

/** The manifest's bytes as stored, with their media type (the bytes' own `mediaType`). */
async function storedManifest(
  store: OciStore,
  digest: Digest,
): Promise<{ bytes: Buffer; mediaType: string; json: Manifest & ImageIndex }> {
  await store.verifyBlob(digest)
  const json = await store.readJson<Manifest & ImageIndex>(digest)
  const bytes = await readFile(store.blobPath(digest))
  const mediaType = json.mediaType ?? (Array.isArray(json.manifests) ? MEDIA_INDEX : MEDIA_MANIFEST)
  return { bytes, mediaType, json }
}

/**
 * Pushes the image (a manifest, or an index and each of its manifests) `manifestDigest` of `store` to
 * `repository`: every blob first (skipped when the registry has it, mounted when a `mountFrom` repository
 * has it, uploaded otherwise), each manifest only once all its blobs are there, then the tags with the
 * same bytes. A push cut at any point leaves no manifest pointing at a missing blob.
 */
export async function pushImage(
  client: RegistryClient,
  store: OciStore,
  repository: string,
  manifestDigest: Digest,
  opts: PushOptions = {},
): Promise<{ digest: Digest; uploaded: number; skipped: number }> {
  const limit = opts.concurrency ?? 4
  let uploaded = 0
  let skipped = 0
  const done = new Map<Digest, Promise<void>>()

  const pushBlob = (d: Descriptor): Promise<void> => {
    let p = done.get(d.digest)
    if (p) return p
    p = (async () => {
      if (await client.hasBlob(repository, d.digest)) {
        skipped++
        opts.onEvent?.({ type: 'blob-skipped', digest: d.digest, size: d.size, reason: 'exists' })
        return
      }
      for (const from of opts.mountFrom ?? []) {
        if (from !== repository && (await client.mountBlob(repository, d.digest, from))) {
          skipped++
          opts.onEvent?.({ type: 'blob-skipped', digest: d.digest, size: d.size, reason: 'mounted' })
          return
        }
      }
      if (!store.hasBlob(d.digest)) {
        throw new GrailError('BLOB_MISSING', `blob ${d.digest} is missing from ${store.root}`, {
          hint: '`grail build` rebuilds the missing blobs of the images grail.yaml builds',
        })
      }
      const size = await blobSize(store, d.digest)
      if (size !== d.size) {
        throw new GrailError(
          'BLOB_CORRUPT',
          `blob ${d.digest} has ${size} bytes, not the ${d.size} its descriptor says`,
        )
      }
      await client.pushBlob(repository, d.digest, size, () => store.openBlob(d.digest))
      uploaded++
      opts.onEvent?.({ type: 'blob-done', digest: d.digest, size })
    })()
    done.set(d.digest, p)
    return p
  }

  const pushManifest = async (digest: Digest): Promise<{ bytes: Buffer; mediaType: string }> => {
    const m = await storedManifest(store, digest)
    if (INDEX_TYPES.has(m.mediaType)) {
      await eachLimited(m.json.manifests, 1, async (child) => {
        await pushManifest(child.digest)
      })
    } else {
      if (!m.json.config || !Array.isArray(m.json.layers)) {
        throw new GrailError('BLOB_CORRUPT', `blob ${digest} is not an image manifest`)
      }
      await eachLimited([m.json.config, ...m.json.layers], limit, pushBlob)
    }
    const got = await client.putManifest(repository, digest, m.mediaType, m.bytes)
    opts.onEvent?.({ type: 'manifest', digest: got, reference: digest })
    return m
  }

  const top = await pushManifest(manifestDigest)
  for (const tag of opts.tags ?? []) {
    const got = await client.putManifest(repository, tag, top.mediaType, top.bytes)
    if (got !== manifestDigest) {
      throw new GrailError(
        'DIGEST_MISMATCH',
        `tag ${repository}:${tag} points at ${got}, not ${manifestDigest}`,
      )
    }
    opts.onEvent?.({ type: 'manifest', digest: got, reference: tag })
  }
  return { digest: manifestDigest, uploaded, skipped }
}

function platformOf(d: Descriptor): string {
  return d.platform ? `${d.platform.os}/${d.platform.architecture}` : 'unknown'
}

/**
 * Pulls `repository:reference` (a tag or a digest) into `store`. An index (or Docker manifest list) is
 * resolved to the manifest of `opts.platform` (linux/amd64 by default), whose digest is returned. Every
 * blob not already sound in the store is streamed, verified, and adopted; the manifest bytes go in last,
 * exactly as the registry served them, so the store never has a manifest whose blobs are missing.
 */
export async function pullImage(
  client: RegistryClient,
  repository: string,
  reference: string,
  store: OciStore,
  opts: PullOptions = {},
): Promise<{ digest: Digest; mediaType: string; manifest: Manifest; configDigest: Digest }> {
  const want = opts.platform ?? { os: 'linux', architecture: 'amd64' }
  let fetched = await client.getManifest(repository, reference)
  if (INDEX_TYPES.has(fetched.mediaType)) {
    const index = JSON.parse(fetched.bytes.toString('utf8')) as ImageIndex
    const pick = (index.manifests ?? []).find(
      (d) =>
        d.platform?.os === want.os &&
        d.platform?.architecture === want.architecture &&
        MANIFEST_TYPES.has(d.mediaType),
    )
    if (!pick || !isDigest(pick.digest)) {
      const have = (index.manifests ?? []).map(platformOf).join(', ') || 'none'
      throw new GrailError(
        'REGISTRY_NO_PLATFORM',
        `${client.registry}/${repository}:${reference} has no ${want.os}/${want.architecture} image (it has: ${have})`,
        {
          hint: 'pull a platform the index lists',
        },
      )
    }
    fetched = await client.getManifest(repository, pick.digest)
  }
  if (!MANIFEST_TYPES.has(fetched.mediaType)) {
    throw new GrailError(
      'REGISTRY_ERROR',
      `${client.registry}/${repository}:${reference} is a ${fetched.mediaType || 'manifest of no media type'}, not an image manifest Grail can run`,
      {
        hint: `Grail pulls ${MEDIA_MANIFEST} and ${DOCKER_MANIFEST} (and indexes of them)`,
      },
    )
  }
  const manifest = JSON.parse(fetched.bytes.toString('utf8')) as Manifest
  if (
    !manifest.config ||
    !isDigest(manifest.config.digest) ||
    !Array.isArray(manifest.layers) ||
    manifest.layers.some((l) => !isDigest(l.digest))
  ) {
    throw new GrailError(
      'REGISTRY_ERROR',
      `manifest ${fetched.digest} from ${client.registry}/${repository} has no valid config or layers`,
    )
  }
  const blobs = [manifest.config, ...manifest.layers]
  const seen = new Set<Digest>()
  const todo = blobs.filter((d) => !seen.has(d.digest) && seen.add(d.digest))
  await eachLimited(todo, opts.concurrency ?? 4, async (d) => {
    if (store.hasBlob(d.digest)) {
      try {
        await store.verifyBlob(d.digest)
        opts.onEvent?.({ type: 'blob-skipped', digest: d.digest, size: d.size, reason: 'exists' })
        return
      } catch (err) {
        if (!(err instanceof GrailError) || (err.code !== 'BLOB_CORRUPT' && err.code !== 'BLOB_MISSING'))
          throw err
      }
    }
    const tmp = store.tmpPath('pull')
    await client.fetchBlobTo(repository, d.digest, tmp, d.size)
    await store.adoptFile(tmp, d.digest)
    opts.onEvent?.({ type: 'blob-done', digest: d.digest, size: d.size })
  })
  // the config must be JSON and sound before the manifest is stored
  await store.readJson(manifest.config.digest)
  if (sha256(fetched.bytes) !== fetched.digest) throw new Error('unreachable: fetched bytes changed')
  await store.putBytes(fetched.bytes, fetched.digest)
  opts.onEvent?.({ type: 'manifest', digest: fetched.digest, reference })
  return {
    digest: fetched.digest,
    mediaType: fetched.mediaType,
    manifest,
    configDigest: manifest.config.digest,
  }
}
