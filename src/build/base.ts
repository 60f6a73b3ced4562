import type { ImageSpec } from '../spec/types.js'
import type { CachedBase } from '../state/index.js'
import { getCachedBase, putCachedBase } from '../state/index.js'
import { debianBaseKeyPart, produceDebianBase } from './base-debian.js'
import {
  ociKeyPart,
  produceGrailBase,
  produceOciBase,
  produceRootfsBase,
  resolveGrailBase,
  rootfsKeyPart,
} from './base-local.js'
import { reusableBlobs } from '../oci/blob-check.js'
import { GrailError } from '../errors.js'
import type { BuildEnv, ImageState } from './env.js'
import { emptyConfig } from './env.js'
import { deriveKey } from './keys.js'

/** What a base resolves to before any work: its key and a short description for progress output. */
export interface PlannedBase {
  key: string
  description: string
  produce: () => Promise<ImageState>
}

/**
 * Works out a base's cache key (cheap: a hash of its definition, the tarball's content, or the parent's
 * manifest digest) and how to produce it if it is not cached.
 */
export async function planBase(image: ImageSpec, env: BuildEnv): Promise<PlannedBase> {
  const base = image.base
  switch (base.kind) {
    case 'scratch': {
      const key = deriveKey('', { kind: 'scratch' })
      return {
        key,
        description: 'scratch',
        produce: async () => ({ key, layers: [], config: emptyConfig(), packages: [], parentDigest: null }),
      }
    }
    case 'debian': {
      const key = deriveKey('', debianBaseKeyPart(base, env.epoch))
      return { key, description: `debian ${base.suite}`, produce: () => produceDebianBase(base, env, key) }
    }
    case 'rootfs': {
      const key = deriveKey('', await rootfsKeyPart(base, env.home))
      return { key, description: `rootfs ${base.path}`, produce: () => produceRootfsBase(base, env, key) }
    }
    case 'oci': {
      const key = deriveKey('', await ociKeyPart(base))
      return { key, description: `oci ${base.path}`, produce: () => produceOciBase(base, env, key) }
    }
    case 'image': {
      const rec = resolveGrailBase(base, env, image.name)
      const key = deriveKey('', { kind: 'image', manifest: rec.digest })
      return {
        key,
        description: `${rec.name} v${rec.version}`,
        produce: () => produceGrailBase(rec, env, key),
      }
    }
    case 'registry': {
      if (!env.registry) {
        throw new GrailError(
          'REGISTRY_NOT_CONFIGURED',
          `image ${image.name}: base ${base.ref} cannot be resolved here`,
          {
            hint: 'this command does not reach registries; run `grail build` (it pins the digest in grail.lock)',
          },
        )
      }
      // the manifest digest, never the tag: the same tag moved to another image is another base
      const digest = await env.registry.digestOf(image.name, base.ref)
      const key = deriveKey('', { kind: 'registry', digest })
      return {
        key,
        description: `registry ${base.ref.replace(/@.*$/, '')}@${digest.slice(0, 19)}`,
        produce: async () => {
          const { produceRegistryBase } = await import('./base-registry.js')
          return produceRegistryBase(base, digest, env, key)
        },
      }
    }
  }
}

/** Returns the base from the cache when its key is known and its blobs are sound, else produces it. */
export async function resolveBase(
  planned: PlannedBase,
  env: BuildEnv,
  image?: string,
): Promise<{ state: ImageState; cached: boolean }> {
  const fromCache = (hit: CachedBase): ImageState => ({
    key: planned.key,
    layers: hit.layers,
    config: hit.config as ImageState['config'],
    packages: hit.packages,
    parentDigest: hit.parentDigest,
  })
  if (!env.noCache && !env.refresh) {
    const hit = getCachedBase(env.db, planned.key)
    // the reused layers must be there and hash right; otherwise the base is produced again
    if (
      hit &&
      (await reusableBlobs(
        env.store,
        hit.layers.map((l) => l.digest),
      ))
    ) {
      return { state: fromCache(hit), cached: true }
    }
    // a shared cache (`--cache-from`) may have it: its blobs come into the store verified, and the
    // local cache takes the entry, so the next build finds it here
    const remote = image === undefined ? undefined : await env.remoteCache?.base(image, planned.key)
    if (remote) {
      putCachedBase(env.db, planned.key, remote)
      return { state: fromCache(remote), cached: true }
    }
  }
  const state = await planned.produce()
  putCachedBase(env.db, planned.key, {
    layers: state.layers,
    config: state.config,
    packages: state.packages,
    parentDigest: state.parentDigest,
  })
  return { state, cached: false }
}
