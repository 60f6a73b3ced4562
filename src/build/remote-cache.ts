import type { CachedBase } from '../state/index.js'
import type { LayerDesc } from './env.js'

/**
 * A build cache shared across machines (`build --cache-from`): what a step's or a base's cache key maps
 * to somewhere else. The builder asks it only when its local cache misses, and records a hit in the local
 * cache. An implementation (src/lifecycle/registry/cache.ts reads a registry) fetches the blobs into the
 * store, verified, before it answers; it never fails a build over a cache it cannot read: it answers
 * undefined (and warns) instead, and throws only what the user must fix (credentials a registry refused).
 */
export interface RemoteCache {
  /** the layer a step's key maps to, its blob now in the store and sound; undefined on a miss */
  layer(image: string, key: string): Promise<LayerDesc | undefined>
  /** the base a base key maps to, every layer blob now in the store and sound; undefined on a miss */
  base(image: string, key: string): Promise<CachedBase | undefined>
}
