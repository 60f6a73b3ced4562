import { userInfo } from 'node:os'
import { makeRedactor, type Redactor, redactValue } from '../util/redact.js'
import type { Db } from './db.js'
import { nowIso } from './db.js'

/** The redactor of each open database: the project's secrets, set once the spec is loaded. */
const redactors = new WeakMap<Db, Redactor>()
const defaultRedactor = makeRedactor([])

/**
 * Sets the secrets that every event written through `db` is cleaned of. The event log is append-only,
 * so a secret that reached it could never be removed: redaction happens before the insert.
 */
export function useRedactor(db: Db, r: Redactor): void {
  redactors.set(db, r)
}

/** The redactor set for `db`, or one that knows only the default secret key pattern. */
export function redactorOf(db: Db): Redactor {
  return redactors.get(db) ?? defaultRedactor
}

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

/**
 * Appends one audit event, its data cleaned of secrets (`useRedactor`); events are never updated or
 * deleted (enforced by triggers).
 */
export function appendEvent(db: Db, kind: string, subject: string, data: Record<string, unknown> = {}): void {
  db.prepare('INSERT INTO events (at, kind, subject, actor, data) VALUES (?, ?, ?, ?, ?)').run(
    nowIso(),
    kind,
    subject,
    currentActor(),
    JSON.stringify(redactValue(data, redactorOf(db))),
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

/** One page of the event log, newest first; `next` is the `before` of the following page (null: none). */
export interface EventPage {
  events: EventRecord[]
  next: number | null
}

/** The events with an id below `before` (all when absent), newest first, at most `limit`. */
export function eventPage(db: Db, opts: { before?: number; limit: number }): EventPage {
  const rows = (
    opts.before === undefined
      ? db.prepare('SELECT * FROM events ORDER BY id DESC LIMIT ?').all(opts.limit + 1)
      : db
          .prepare('SELECT * FROM events WHERE id < ? ORDER BY id DESC LIMIT ?')
          .all(opts.before, opts.limit + 1)
  ) as Array<Omit<EventRecord, 'data'> & { data: string }>
  const events = rows
    .slice(0, opts.limit)
    .map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }))
  const last = events[events.length - 1]
  return { events, next: rows.length > opts.limit && last ? last.id : null }
}
