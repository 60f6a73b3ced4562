/**
 * The shared build cache in a registry (`build --cache-from/--cache-to registry`, `registry.cache`).
 *
 * One OCI manifest per image, `<prefix>/<image>:grail-cache`. Its config blob (media type
 * `application/vnd.grail.build-cache.v1+json`) maps step cache keys to layer descriptors and base keys to
 * base entries (layers, image config, packages, parent digest); its `layers` list every layer blob the map
 * names, so the registry's garbage-collect keeps them while the map does. A push merges with the map
 * there (the newest CACHE_KEEP keys of each kind stay); two machines pushing at once: the last writer
 * wins, which for a cache only costs the loser's entries a rebuild.
 *
 * Reading never fails a build: a registry that cannot be read, a map that does not parse, a blob that is
 * missing or does not verify, each turns into one warning and a local build. Only what the user must fix
 * (credentials the registry refused, a credential source that cannot be read) is thrown.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import type { BuiltImage } from '../../build/builder.js'
import type { LayerDesc } from '../../build/env.js'
import type { RemoteCache } from '../../build/remote-cache.js'
import { GrailError } from '../../errors.js'
import { reusableBlobs } from '../../oci/blob-check.js'
import { canonicalJson } from '../../oci/canonical-json.js'
import { type Digest, isDigest, sha256 } from '../../oci/digest.js'
import { MEDIA_LAYER_GZIP, MEDIA_MANIFEST } from '../../oci/media-types.js'
import type { OciStore } from '../../oci/store.js'
import type { Descriptor, Manifest } from '../../oci/types.js'
import type { CachedBase, Db, PackageInfo } from '../../state/index.js'
import { getCachedBase, getCachedLayer } from '../../state/index.js'
import { mapLimit } from '../../util/pool.js'
import type { Registry } from './connect.js'

export const CACHE_TAG = 'grail-cache'
export const MEDIA_BUILD_CACHE = 'application/vnd.grail.build-cache.v1+json'
/** keys of each kind (steps, bases) a cache manifest keeps, newest first */
export const CACHE_KEEP = 256
/** a cache map bigger than this is not ours (256 bases with their package lists are well under it) */
const MAX_MAP_BYTES = 32 * 1024 * 1024

type LayerEntry = LayerDesc & { at: string }
type BaseEntry = CachedBase & { at: string }

/** The config blob of a cache manifest. */
export interface CacheMap {
  format: 1
  layers: Record<string, LayerEntry>
  bases: Record<string, BaseEntry>
}

const emptyMap = (): CacheMap => ({ format: 1, layers: {}, bases: {} })

/** What the user must fix: never hidden behind "building locally". */
const FATAL = new Set([
  'REGISTRY_AUTH',
  'REGISTRY_CREDENTIALS',
  'REGISTRY_INSECURE',
  'REGISTRY_NOT_CONFIGURED',
])

export function isFatalCacheError(err: unknown): boolean {
  return err instanceof GrailError && FATAL.has(err.code)
}

function layerOf(v: unknown): LayerDesc | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const l = v as Record<string, unknown>
  if (l.mediaType !== MEDIA_LAYER_GZIP) return undefined
  if (typeof l.digest !== 'string' || !isDigest(l.digest)) return undefined
  if (typeof l.diffId !== 'string' || !isDigest(l.diffId)) return undefined
  if (typeof l.size !== 'number' || !Number.isSafeInteger(l.size) || l.size < 0) return undefined
  return { mediaType: MEDIA_LAYER_GZIP, digest: l.digest, diffId: l.diffId, size: l.size }
}

/**
 * Reads a cache map from untrusted bytes: an entry that is not well formed is dropped (a miss), never
 * trusted. The digests it names are checked again when their blobs are fetched.
 */
export function parseCacheMap(bytes: Buffer): CacheMap {
  const raw = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
  const map = emptyMap()
  if (typeof raw !== 'object' || raw === null || raw.format !== 1) return map
  const at = (v: unknown): string => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? v : '')
  for (const [key, v] of Object.entries((raw.layers ?? {}) as Record<string, unknown>)) {
    const l = layerOf(v)
    if (l) map.layers[key] = { ...l, at: at((v as { at?: unknown }).at) }
  }
  for (const [key, v] of Object.entries((raw.bases ?? {}) as Record<string, unknown>)) {
    if (typeof v !== 'object' || v === null) continue
    const b = v as Record<string, unknown>
    const layers = Array.isArray(b.layers) ? b.layers.map(layerOf) : undefined
    if (!layers || layers.some((l) => l === undefined)) continue
    const config = b.config as { rootfs?: { diff_ids?: unknown } } | null
    const diffIds = config?.rootfs?.diff_ids
    // the config's diff ids are the layers', in order: an image built on it is consistent
    if (
      !Array.isArray(diffIds) ||
      diffIds.length !== layers.length ||
      diffIds.some((d, i) => d !== layers[i]?.diffId)
    )
      continue
    if (!Array.isArray(b.packages)) continue
    const parent = b.parentDigest
    if (parent !== null && (typeof parent !== 'string' || !isDigest(parent))) continue
    map.bases[key] = {
      layers: layers as LayerDesc[],
      config: b.config,
      packages: b.packages as PackageInfo[],
      parentDigest: parent as Digest | null,
      at: at(b.at),
    }
  }
  return map
}

/** `mine` over `theirs`, then the newest `keep` keys of each kind. */
export function mergeCacheMaps(theirs: CacheMap, mine: CacheMap, keep = CACHE_KEEP): CacheMap {
  const newest = <T extends { at: string }>(a: Record<string, T>, b: Record<string, T>) =>
    Object.fromEntries(
      Object.entries({ ...a, ...b })
        .sort(([ka, x], [kb, y]) => (x.at === y.at ? (ka < kb ? -1 : 1) : x.at < y.at ? 1 : -1))
        .slice(0, keep),
    )
  return { format: 1, layers: newest(theirs.layers, mine.layers), bases: newest(theirs.bases, mine.bases) }
}

/** Every layer a map names, once, in a stable order: the cache manifest's `layers`. */
export function mapLayers(map: CacheMap): Descriptor[] {
  const seen = new Map<string, Descriptor>()
  const add = (l: LayerDesc) => {
    if (!seen.has(l.digest)) seen.set(l.digest, { mediaType: l.mediaType, digest: l.digest, size: l.size })
  }
  for (const l of Object.values(map.layers)) add(l)
  for (const b of Object.values(map.bases)) for (const l of b.layers) add(l)
  return [...seen.values()].sort((a, b) => (a.digest < b.digest ? -1 : 1))
}

/** The uncompressed digest of a gzip layer file (what the image config lists as its diff id). */
async function diffIdOf(path: string): Promise<Digest> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), createGunzip(), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) hash.update(chunk)
  })
  return `sha256:${hash.digest('hex')}`
}

export interface RegistryCacheOptions {
  registry: Registry
  store: OciStore
  /** one line per image whose cache could not be read or written (the build goes on) */
  warn: (line: string) => void
}

/** Reads the cache maps in the registry, one per image, fetched at most once per build. */
export function registryRemoteCache(opts: RegistryCacheOptions): RemoteCache {
  const { registry, store } = opts
  const maps = new Map<string, Promise<CacheMap | undefined>>()
  const warned = new Set<string>()
  const where = (image: string) => `${registry.client.registry}/${registry.repository(image)}:${CACHE_TAG}`
  /** a failure of the cache: thrown when the user must fix it, else one warning per image and a miss */
  const degrade = (image: string, err: unknown): undefined => {
    if (isFatalCacheError(err)) throw err
    if (!warned.has(image)) {
      warned.add(image)
      const why = err instanceof Error ? err.message : String(err)
      opts.warn(`warning: build cache ${where(image)}: ${why}; building what it would give locally`)
    }
    return undefined
  }
  const mapOf = (image: string): Promise<CacheMap | undefined> => {
    let p = maps.get(image)
    if (!p) {
      p = readCacheMap(registry, store, image).catch((err: unknown) => {
        degrade(image, err)
        // a map that could not be read stays unread for this build: one warning, no retry per step
        return undefined
      })
      maps.set(image, p)
    }
    return p
  }
  const fetchLayers = async (image: string, layers: readonly LayerDesc[]): Promise<boolean> => {
    const repo = registry.repository(image)
    for (const l of layers) {
      if (store.hasBlob(l.digest) && (await reusableBlobs(store, [l.digest]))) continue
      const tmp = store.tmpPath('cache-layer')
      try {
        await registry.client.fetchBlobTo(repo, l.digest, tmp, l.size)
        // the bytes hash to the digest (fetchBlobTo checked it while they streamed); the diff id the map
        // claims must be theirs too, or an image built on the layer would not unpack to its config
        const diffId = await diffIdOf(tmp)
        if (diffId !== l.diffId)
          throw new GrailError(
            'DIGEST_MISMATCH',
            `layer ${l.digest} unpacks to ${diffId}, not the diff id ${l.diffId} the cache names`,
          )
        await store.adoptFile(tmp, l.digest)
      } catch (err) {
        await rm(tmp, { force: true })
        degrade(image, err)
        return false
      }
    }
    return true
  }
  return {
    async layer(image, key) {
      const entry = (await mapOf(image))?.layers[key]
      if (!entry) return undefined
      const layer: LayerDesc = {
        mediaType: entry.mediaType,
        digest: entry.digest,
        diffId: entry.diffId,
        size: entry.size,
      }
      return (await fetchLayers(image, [layer])) ? layer : undefined
    },
    async base(image, key) {
      const entry = (await mapOf(image))?.bases[key]
      if (!entry) return undefined
      if (!(await fetchLayers(image, entry.layers))) return undefined
      const { at: _at, ...base } = entry
      return base
    },
  }
}

/** The map of `<prefix>/<image>:grail-cache`; empty when there is none (or the tag is not a cache). */
export async function readCacheMap(registry: Registry, store: OciStore, image: string): Promise<CacheMap> {
  const repo = registry.repository(image)
  const head = await registry.client.headManifest(repo, CACHE_TAG)
  if (!head) return emptyMap()
  const fetched = await registry.client.getManifest(repo, head.digest)
  const manifest = JSON.parse(fetched.bytes.toString('utf8')) as Partial<Manifest>
  const config = manifest.config
  if (!config || config.mediaType !== MEDIA_BUILD_CACHE || !isDigest(config.digest)) return emptyMap()
  if (typeof config.size !== 'number' || config.size > MAX_MAP_BYTES)
    throw new GrailError('REGISTRY_ERROR', `the cache map of ${repo} is ${config.size} bytes: not Grail's`)
  const tmp = store.tmpPath('cache-map')
  try {
    await registry.client.fetchBlobTo(repo, config.digest, tmp, config.size)
    return parseCacheMap(await readFile(tmp))
  } finally {
    await rm(tmp, { force: true })
  }
}

/** The entries a built image gives the cache: its base's key and every step key that made a layer. */
function entriesOf(db: Db, image: BuiltImage, at: string): CacheMap {
  const map = emptyMap()
  if (image.baseKey !== undefined) {
    const base = getCachedBase(db, image.baseKey)
    if (base) {
      const layers = base.layers.map(layerOf)
      if (layers.every((l) => l !== undefined)) map.bases[image.baseKey] = { ...base, layers, at }
    }
  }
  for (const s of image.steps) {
    if (s.layer === undefined || s.key === image.baseKey) continue
    const hit = getCachedLayer(db, s.key)
    if (hit && hit.digest === s.layer) map.layers[s.key] = { mediaType: MEDIA_LAYER_GZIP, ...hit, at }
  }
  return map
}

export interface CachePushReport {
  image: string
  reference: string
  digest: Digest
  /** layer blobs uploaded (the rest the registry had) */
  uploaded: number
  keys: number
}

/**
 * `--cache-to`: pushes each built image's layers (what the registry has is skipped) and the merged cache
 * manifest. A failure other than the user's to fix is a warning: the build it follows succeeded.
 */
export async function pushBuildCache(
  opts: RegistryCacheOptions & {
    db: Db
    images: readonly BuiltImage[]
    concurrency?: number
    now?: Date
  },
): Promise<CachePushReport[]> {
  const out: CachePushReport[] = []
  for (const image of opts.images) {
    try {
      out.push(await pushOne(opts, image))
    } catch (err) {
      if (isFatalCacheError(err)) throw err
      const why = err instanceof Error ? err.message : String(err)
      opts.warn(
        `warning: build cache ${opts.registry.client.registry}/${opts.registry.repository(image.name)}:${CACHE_TAG} not updated: ${why}`,
      )
    }
  }
  return out
}

async function pushOne(
  opts: RegistryCacheOptions & { db: Db; concurrency?: number; now?: Date },
  image: BuiltImage,
): Promise<CachePushReport> {
  const { registry, store } = opts
  const client = registry.client
  const repo = registry.repository(image.name)
  const mine = entriesOf(opts.db, image, (opts.now ?? new Date()).toISOString())
  const mineLayers = mapLayers(mine)
  let uploaded = 0
  await mapLimit(mineLayers, opts.concurrency ?? 4, async (l) => {
    if (await client.hasBlob(repo, l.digest)) return
    await client.pushBlob(repo, l.digest, l.size, () => store.openBlob(l.digest))
    uploaded++
  })
  let theirs: CacheMap
  try {
    theirs = await readCacheMap(registry, store, image.name)
  } catch (err) {
    // a map that cannot be read is replaced: the cache starts again from this build's entries
    if (isFatalCacheError(err)) throw err
    theirs = emptyMap()
  }
  const put = async (map: CacheMap): Promise<Digest> => {
    const bytes = Buffer.from(canonicalJson(map))
    const digest = sha256(bytes)
    if (!(await client.hasBlob(repo, digest)))
      await client.pushBlob(repo, digest, bytes.length, () => Readable.from([bytes]))
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MEDIA_MANIFEST,
      config: { mediaType: MEDIA_BUILD_CACHE, digest, size: bytes.length },
      layers: mapLayers(map),
    }
    return client.putManifest(repo, CACHE_TAG, MEDIA_MANIFEST, Buffer.from(canonicalJson(manifest)))
  }
  const merged = mergeCacheMaps(theirs, mine)
  let map = merged
  let digest: Digest
  try {
    digest = await put(merged)
  } catch (err) {
    if (isFatalCacheError(err)) throw err
    // a blob an older entry names may be gone from the registry (its garbage-collect, a deleted
    // repository), and the registry refuses a manifest naming a missing blob: this build's entries,
    // whose blobs were just checked, make the map instead
    map = mine
    digest = await put(mine)
  }
  return {
    image: image.name,
    reference: `${client.registry}/${repo}:${CACHE_TAG}`,
    digest,
    uploaded,
    keys: Object.keys(map.layers).length + Object.keys(map.bases).length,
  }
}
