import type { Digest } from '../oci/digest.js'
import type { Db } from './db.js'

export interface PackageInfo {
  name: string
  version: string
  architecture: string
}

export type ImageStatus = 'active' | 'deprecated' | 'revoked'

/** One built image version, as the catalog records it. */
export interface ImageRecord {
  name: string
  version: number
  digest: Digest
  configDigest: Digest
  buildKey: string
  parentDigest: Digest | null
  base: unknown
  gitCommit: string | null
  createdAt: string
  size: number
  packages: PackageInfo[]
  status: ImageStatus
  statusReason: string | null
}

interface Row {
  name: string
  version: number
  digest: string
  config_digest: string
  build_key: string
  parent_digest: string | null
  base: string
  git_commit: string | null
  created_at: string
  size: number
  packages: string
  status: ImageStatus
  status_reason: string | null
}

function fromRow(r: Row): ImageRecord {
  return {
    name: r.name,
    version: r.version,
    digest: r.digest as Digest,
    configDigest: r.config_digest as Digest,
    buildKey: r.build_key,
    parentDigest: r.parent_digest as Digest | null,
    base: JSON.parse(r.base) as unknown,
    gitCommit: r.git_commit,
    createdAt: r.created_at,
    size: r.size,
    packages: JSON.parse(r.packages) as PackageInfo[],
    status: r.status,
    statusReason: r.status_reason,
  }
}

/** Every version of every image (or of one name), newest first within a name. */
export function listImages(db: Db, name?: string): ImageRecord[] {
  const rows = (
    name === undefined
      ? db.prepare('SELECT * FROM images WHERE collected_at IS NULL ORDER BY name, version DESC').all()
      : db
          .prepare('SELECT * FROM images WHERE name = ? AND collected_at IS NULL ORDER BY version DESC')
          .all(name)
  ) as Row[]
  return rows.map(fromRow)
}

/** The newest active version of an image, if any. */
export function latestImage(db: Db, name: string): ImageRecord | undefined {
  const row = db
    .prepare(
      "SELECT * FROM images WHERE name = ? AND status = 'active' AND collected_at IS NULL ORDER BY version DESC LIMIT 1",
    )
    .get(name) as Row | undefined
  return row && fromRow(row)
}

export function getImage(db: Db, name: string, version: number): ImageRecord | undefined {
  const row = db
    .prepare('SELECT * FROM images WHERE name = ? AND version = ? AND collected_at IS NULL')
    .get(name, version) as Row | undefined
  return row && fromRow(row)
}

/**
 * The version of `name` that this build key produced (one key gives one digest, and one digest has one
 * version). A key whose version was garbage collected finds nothing: building it again makes a new version.
 */
export function findImageByKey(db: Db, name: string, buildKey: string): ImageRecord | undefined {
  const row = db
    .prepare(
      `SELECT images.* FROM build_keys JOIN images ON images.name = build_keys.name AND images.version = build_keys.version
       WHERE build_keys.name = ? AND build_keys.build_key = ? AND images.collected_at IS NULL`,
    )
    .get(name, buildKey) as Row | undefined
  return row && fromRow(row)
}

/** What went into a build, recorded with its key: the base key, and each step's key and copied sources. */
export interface BuildInputs {
  base: { key: string; description: string }
  steps: Array<{
    key: string
    label: string
    /** a copy step's entries by path in the image: the source file (relative to the build context) and
     * a hash of what the key takes from it (type, mode, owner, content or link target) */
    sources?: Record<string, { from?: string; hash: string }>
  }>
}

/** The inputs recorded for the newest build key of a version, if that build recorded them. */
export function buildInputsOf(db: Db, name: string, version: number): BuildInputs | undefined {
  const row = db
    .prepare(
      'SELECT inputs FROM build_keys WHERE name = ? AND version = ? AND inputs IS NOT NULL ORDER BY created_at DESC, rowid DESC LIMIT 1',
    )
    .get(name, version) as { inputs: string } | undefined
  return row && (JSON.parse(row.inputs) as BuildInputs)
}

/**
 * Records a built image: a digest the catalog already has under this name (and has not collected) keeps
 * its version, so one digest never gets two; otherwise version = previous highest + 1 (monotonic per
 * name, never reused even after gc). Either way the build key now finds that version. One immediate
 * transaction, so two concurrent builds cannot take the same number or make two versions of one digest.
 */
export function recordImageVersion(
  db: Db,
  rec: Omit<ImageRecord, 'version' | 'status' | 'statusReason'>,
  inputs?: BuildInputs,
): { record: ImageRecord; created: boolean } {
  const insert = db.transaction((): { record: ImageRecord; created: boolean } => {
    const same = db
      .prepare(
        'SELECT * FROM images WHERE name = ? AND digest = ? AND collected_at IS NULL ORDER BY version LIMIT 1',
      )
      .get(rec.name, rec.digest) as Row | undefined
    let record: ImageRecord
    if (same) record = fromRow(same)
    else {
      const max = db.prepare('SELECT MAX(version) AS v FROM images WHERE name = ?').get(rec.name) as {
        v: number | null
      }
      const version = (max.v ?? 0) + 1
      db.prepare(
        `INSERT INTO images (name, version, digest, config_digest, build_key, parent_digest, base, git_commit, created_at, size, packages)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        rec.name,
        version,
        rec.digest,
        rec.configDigest,
        rec.buildKey,
        rec.parentDigest,
        JSON.stringify(rec.base),
        rec.gitCommit,
        rec.createdAt,
        rec.size,
        JSON.stringify(rec.packages),
      )
      record = { ...rec, version, status: 'active', statusReason: null }
    }
    db.prepare(
      'INSERT OR REPLACE INTO build_keys (name, build_key, version, inputs, created_at) VALUES (?, ?, ?, ?, ?)',
    ).run(rec.name, rec.buildKey, record.version, inputs ? JSON.stringify(inputs) : null, rec.createdAt)
    return { record, created: !same }
  })
  return insert.immediate()
}

/** Records a new image version (or finds the one that has this digest already): see recordImageVersion. */
export function insertImage(
  db: Db,
  rec: Omit<ImageRecord, 'version' | 'status' | 'statusReason'>,
): ImageRecord {
  return recordImageVersion(db, rec).record
}

/**
 * Every revoked image digest with the reason it was revoked: what plans replace and rollbacks refuse.
 * A `--cascade` revocation gave each descendant its own row, so they are here too.
 */
export function revokedDigests(db: Db): Record<string, string> {
  const rows = db
    .prepare("SELECT digest, status_reason FROM images WHERE status = 'revoked'")
    .all() as Array<{
    digest: string
    status_reason: string | null
  }>
  return Object.fromEntries(rows.map((r) => [r.digest, r.status_reason ?? 'revoked']))
}

/** Sets an image version's status (revoke, unrevoke, deprecate) with its reason. */
export function setImageStatus(
  db: Db,
  name: string,
  version: number,
  status: ImageStatus,
  reason: string | null,
): void {
  db.prepare('UPDATE images SET status = ?, status_reason = ? WHERE name = ? AND version = ?').run(
    status,
    reason,
    name,
    version,
  )
}

/** Image versions built directly on the image with this manifest digest (any name). */
export function childrenOf(db: Db, digest: string): ImageRecord[] {
  return (
    db
      .prepare('SELECT * FROM images WHERE parent_digest = ? AND collected_at IS NULL ORDER BY name, version')
      .all(digest) as Row[]
  ).map(fromRow)
}

/** Marks image versions as garbage collected: their blobs are gone; the row stays so versions are never reused. */
export function markCollected(db: Db, refs: ReadonlyArray<{ name: string; version: number }>): void {
  const at = new Date().toISOString()
  const mark = db.prepare('UPDATE images SET collected_at = ? WHERE name = ? AND version = ?')
  db.transaction(() => {
    for (const r of refs) mark.run(at, r.name, r.version)
  }).immediate()
}

/**
 * Manifest and config digests of every version the catalog ever recorded, collected ones included: gc
 * tells manifests from configs from layers by them, also when it finishes what a killed gc left.
 */
export function recordedImageBlobs(db: Db): { manifests: Set<string>; configs: Set<string> } {
  const rows = db.prepare('SELECT digest, config_digest FROM images').all() as Array<{
    digest: string
    config_digest: string
  }>
  return {
    manifests: new Set(rows.map((r) => r.digest)),
    configs: new Set(rows.map((r) => r.config_digest)),
  }
}

/** Pinned image digests (never collected). */
export function pinnedDigests(db: Db): Set<string> {
  return new Set(
    (db.prepare('SELECT digest FROM pins').all() as Array<{ digest: string }>).map((r) => r.digest),
  )
}

export function pinImage(db: Db, rec: ImageRecord, reason: string): void {
  db.prepare(
    'INSERT INTO pins (digest, name, version, reason, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO UPDATE SET reason = excluded.reason',
  ).run(rec.digest, rec.name, rec.version, reason, new Date().toISOString())
}

export function unpinImage(db: Db, digest: string): boolean {
  return db.prepare('DELETE FROM pins WHERE digest = ?').run(digest).changes > 0
}
