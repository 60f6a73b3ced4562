import type { Db } from './db.js'
import { nowIso } from './db.js'

export type InstancePhase =
  | 'creating'
  | 'starting'
  | 'healthy'
  | 'draining'
  | 'stopping'
  | 'destroyed'
  | 'failed'

/** What Grail intends for an instance; the provider reports what actually runs. */
export interface InstanceRecord {
  id: string
  service: string
  environment: string
  releaseNumber: number
  provider: string
  phase: InstancePhase
  hostPort: number | null
  reason: string | null
  createdAt: string
  updatedAt: string
}

interface Row {
  id: string
  service: string
  environment: string
  release_number: number
  provider: string
  phase: InstancePhase
  host_port: number | null
  reason: string | null
  created_at: string
  updated_at: string
}

const fromRow = (r: Row): InstanceRecord => ({
  id: r.id,
  service: r.service,
  environment: r.environment,
  releaseNumber: r.release_number,
  provider: r.provider,
  phase: r.phase,
  hostPort: r.host_port,
  reason: r.reason,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
})

/** Records an instance in phase `creating`: written before the provider is asked to create it. */
export function recordInstance(
  db: Db,
  rec: Pick<InstanceRecord, 'id' | 'service' | 'environment' | 'releaseNumber' | 'provider'>,
): InstanceRecord {
  const now = nowIso()
  db.prepare(
    `INSERT INTO instances (id, service, environment, release_number, provider, phase, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, 'creating', ?, ?)`,
  ).run(rec.id, rec.service, rec.environment, rec.releaseNumber, rec.provider, now, now)
  return { ...rec, phase: 'creating', hostPort: null, reason: null, createdAt: now, updatedAt: now }
}

export function setInstancePhase(
  db: Db,
  id: string,
  phase: InstancePhase,
  fields: { reason?: string; hostPort?: number } = {},
): void {
  db.prepare(
    'UPDATE instances SET phase = ?, reason = COALESCE(?, reason), host_port = COALESCE(?, host_port), updated_at = ? WHERE id = ?',
  ).run(phase, fields.reason ?? null, fields.hostPort ?? null, nowIso(), id)
}

/** Instances of an environment that are not destroyed (optionally of one service). */
export function liveInstances(db: Db, environment: string, service?: string): InstanceRecord[] {
  const rows = (
    service === undefined
      ? db
          .prepare(
            "SELECT * FROM instances WHERE environment = ? AND phase <> 'destroyed' ORDER BY created_at",
          )
          .all(environment)
      : db
          .prepare(
            "SELECT * FROM instances WHERE environment = ? AND service = ? AND phase <> 'destroyed' ORDER BY created_at",
          )
          .all(environment, service)
  ) as Row[]
  return rows.map(fromRow)
}
