import type { Db } from './db.js'
import { nowIso } from './db.js'

/** Why Grail started an instance in place of another of the same release. */
export type RestartCause = 'crashed' | 'unhealthy' | 'gate-failed'

/** One involuntary restart of a service: what crash-loop detection counts. */
export interface RestartRecord {
  environment: string
  service: string
  release: number
  /** the instance that crashed, failed its health check or failed its gate */
  instance: string
  cause: RestartCause
  at: string
}

interface Row {
  environment: string
  service: string
  release: number
  instance: string
  cause: RestartCause
  at: string
}

/** Records a restart; written before the replacement is started, so a killed apply still counts it. */
export function recordRestart(db: Db, r: Omit<RestartRecord, 'at'> & { at?: string }): void {
  db.prepare(
    'INSERT INTO restarts (environment, service, release, instance, cause, at) VALUES (?, ?, ?, ?, ?, ?)',
  ).run(r.environment, r.service, r.release, r.instance, r.cause, r.at ?? nowIso())
}

/** Restarts of an environment since a time (ISO), oldest first. */
export function listRestarts(db: Db, environment: string, sinceIso: string): RestartRecord[] {
  return (
    db
      .prepare('SELECT * FROM restarts WHERE environment = ? AND at >= ? ORDER BY at, id')
      .all(environment, sinceIso) as Row[]
  ).map((r) => ({ ...r }))
}

/** Forgets the restarts of an environment (`grail down`: what comes up next starts with a clean slate). */
export function clearRestarts(db: Db, environment: string): void {
  db.prepare('DELETE FROM restarts WHERE environment = ?').run(environment)
}
