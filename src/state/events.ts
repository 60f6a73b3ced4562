import { userInfo } from 'node:os'
import type { Db } from './db.js'
import { nowIso } from './db.js'

export interface EventRecord {
  id: number
  at: string
  kind: string
  subject: string
  actor: string
  data: Record<string, unknown>
}

/** The user (and host-side identity) that Grail attributes actions to. */
export function currentActor(): string {
  return process.env.GRAIL_ACTOR ?? process.env.SUDO_USER ?? userInfo().username
}

/** Appends one audit event; events are never updated or deleted (enforced by triggers). */
export function appendEvent(db: Db, kind: string, subject: string, data: Record<string, unknown> = {}): void {
  db.prepare('INSERT INTO events (at, kind, subject, actor, data) VALUES (?, ?, ?, ?, ?)').run(
    nowIso(),
    kind,
    subject,
    currentActor(),
    JSON.stringify(data),
  )
}

/**
 * Events newest first: of one subject, at or after an ISO time (`since`), at most `limit` (default 100).
 */
export function listEvents(
  db: Db,
  opts: { subject?: string; since?: string; limit?: number } = {},
): EventRecord[] {
  const where: string[] = []
  const args: unknown[] = []
  if (opts.subject !== undefined) {
    where.push('subject = ?')
    args.push(opts.subject)
  }
  if (opts.since !== undefined) {
    where.push('at >= ?')
    args.push(opts.since)
  }
  const sql = `SELECT * FROM events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`
  const rows = db.prepare(sql).all(...args, opts.limit ?? 100) as Array<
    Omit<EventRecord, 'data'> & { data: string }
  >
  return rows.map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }))
}
