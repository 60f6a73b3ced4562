import type { Digest } from '../oci/digest.js'
import type { Db } from './db.js'
import { nowIso } from './db.js'

export type ReleaseStatus = 'pending' | 'active' | 'superseded' | 'failed' | 'rolled-back'

/** A release: (service, environment, image digest, config digest), numbered per service. Immutable but for its status. */
export interface ReleaseRecord {
  service: string
  environment: string
  number: number
  imageName: string
  imageVersion: number
  imageDigest: Digest
  configDigest: Digest
  config: unknown
  status: ReleaseStatus
  reason: string | null
  createdAt: string
  /** `ENV#NUMBER` of the release this one was promoted from (same image and config), or null */
  promotedFrom: string | null
}

interface Row {
  service: string
  environment: string
  number: number
  image_name: string
  image_version: number
  image_digest: string
  config_digest: string
  config: string
  status: ReleaseStatus
  reason: string | null
  created_at: string
  promoted_from: string | null
}

const fromRow = (r: Row): ReleaseRecord => ({
  service: r.service,
  environment: r.environment,
  number: r.number,
  imageName: r.image_name,
  imageVersion: r.image_version,
  imageDigest: r.image_digest as Digest,
  configDigest: r.config_digest as Digest,
  config: JSON.parse(r.config) as unknown,
  status: r.status,
  reason: r.reason,
  createdAt: r.created_at,
  promotedFrom: r.promoted_from,
})

/** Records a new pending release with the next number of its service (monotonic, never reused). */
export function insertRelease(
  db: Db,
  rec: Omit<ReleaseRecord, 'number' | 'status' | 'reason' | 'createdAt' | 'promotedFrom'> & {
    promotedFrom?: string
  },
): ReleaseRecord {
  const insert = db.transaction(() => {
    const max = db.prepare('SELECT MAX(number) AS n FROM releases WHERE service = ?').get(rec.service) as {
      n: number | null
    }
    const number = (max.n ?? 0) + 1
    const createdAt = nowIso()
    db.prepare(
      `INSERT INTO releases (service, environment, number, image_name, image_version, image_digest, config_digest, config, created_at, promoted_from)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      rec.service,
      rec.environment,
      number,
      rec.imageName,
      rec.imageVersion,
      rec.imageDigest,
      rec.configDigest,
      JSON.stringify(rec.config),
      createdAt,
      rec.promotedFrom ?? null,
    )
    return {
      ...rec,
      number,
      status: 'pending' as const,
      reason: null,
      createdAt,
      promotedFrom: rec.promotedFrom ?? null,
    }
  })
  return insert.immediate()
}

export function setReleaseStatus(
  db: Db,
  service: string,
  number: number,
  status: ReleaseStatus,
  reason?: string,
): void {
  db.prepare('UPDATE releases SET status = ?, reason = ? WHERE service = ? AND number = ?').run(
    status,
    reason ?? null,
    service,
    number,
  )
}

/** Releases of a service in an environment, newest first. */
export function listReleases(db: Db, environment: string, service?: string): ReleaseRecord[] {
  const rows = (
    service === undefined
      ? db
          .prepare('SELECT * FROM releases WHERE environment = ? ORDER BY service, number DESC')
          .all(environment)
      : db
          .prepare('SELECT * FROM releases WHERE environment = ? AND service = ? ORDER BY number DESC')
          .all(environment, service)
  ) as Row[]
  return rows.map(fromRow)
}

/** Every release of every environment (for garbage collection). */
export function allReleases(db: Db): ReleaseRecord[] {
  return (db.prepare('SELECT * FROM releases ORDER BY environment, service, number DESC').all() as Row[]).map(
    fromRow,
  )
}
