import type { Digest } from '../oci/digest.js'
import type { PackageInfo } from './images.js'
import type { Db } from './db.js'
import { nowIso } from './db.js'

/** A layer produced by a build step, found again by the step's cache key. */
export interface CachedLayer {
  digest: Digest
  diffId: Digest
  size: number
}

export function getCachedLayer(db: Db, key: string): CachedLayer | undefined {
  const row = db.prepare('SELECT digest, diff_id, size FROM layer_cache WHERE key = ?').get(key) as
    | { digest: string; diff_id: string; size: number }
    | undefined
  return row && { digest: row.digest as Digest, diffId: row.diff_id as Digest, size: row.size }
}

export function putCachedLayer(db: Db, key: string, layer: CachedLayer): void {
  db.prepare(
    'INSERT OR REPLACE INTO layer_cache (key, digest, diff_id, size, created_at) VALUES (?, ?, ?, ?, ?)',
  ).run(key, layer.digest, layer.diffId, layer.size, nowIso())
}

/** A resolved base: its layers, its image config and the packages it contains. */
export interface CachedBase {
  layers: Array<CachedLayer & { mediaType: string }>
  config: unknown
  packages: PackageInfo[]
  parentDigest: Digest | null
}

export function getCachedBase(db: Db, key: string): CachedBase | undefined {
  const row = db
    .prepare('SELECT layers, config, packages, parent_digest FROM base_cache WHERE key = ?')
    .get(key) as
    | { layers: string; config: string; packages: string; parent_digest: string | null }
    | undefined
  if (!row) return undefined
  return {
    layers: JSON.parse(row.layers) as CachedBase['layers'],
    config: JSON.parse(row.config) as unknown,
    packages: JSON.parse(row.packages) as PackageInfo[],
    parentDigest: row.parent_digest as Digest | null,
  }
}

export function putCachedBase(db: Db, key: string, base: CachedBase): void {
  db.prepare(
    'INSERT OR REPLACE INTO base_cache (key, layers, config, packages, parent_digest, created_at) VALUES (?, ?, ?, ?, ?, ?)',
  ).run(
    key,
    JSON.stringify(base.layers),
    JSON.stringify(base.config),
    JSON.stringify(base.packages),
    base.parentDigest,
    nowIso(),
  )
}
