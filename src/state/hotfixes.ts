import type { Db } from './db.js'
import { nowIso } from './db.js'

/** One file a hotfix left changed, as it was right after the hotfix (drift matching it is excused). */
export interface HotfixChange {
  kind: 'A' | 'C' | 'D'
  path: string
  type?: string
  mode?: number
  uid?: number
  gid?: number
  size?: number
  sha256?: string
  linkname?: string
}

export type HotfixStatus = 'running' | 'recorded' | 'interrupted'

/** An audited break-glass change to a live instance. */
export interface HotfixRecord {
  id: number
  instance: string
  environment: string
  service: string
  actor: string
  reason: string
  command: string[]
  status: HotfixStatus
  exitCode: number | null
  changes: HotfixChange[]
  createdAt: string
  expiresAt: string
}

interface Row {
  id: number
  instance: string
  environment: string
  service: string
  actor: string
  reason: string
  command: string
  status: HotfixStatus
  exit_code: number | null
  changes: string
  created_at: string
  expires_at: string
}

const fromRow = (r: Row): HotfixRecord => ({
  id: r.id,
  instance: r.instance,
  environment: r.environment,
  service: r.service,
  actor: r.actor,
  reason: r.reason,
  command: JSON.parse(r.command) as string[],
  status: r.status,
  exitCode: r.exit_code,
  changes: JSON.parse(r.changes) as HotfixChange[],
  createdAt: r.created_at,
  expiresAt: r.expires_at,
})

/** Records a hotfix as running: written before the command reaches the instance. */
export function insertHotfix(
  db: Db,
  h: Pick<
    HotfixRecord,
    'instance' | 'environment' | 'service' | 'actor' | 'reason' | 'command' | 'expiresAt'
  >,
): HotfixRecord {
  const now = nowIso()
  const res = db
    .prepare(
      `INSERT INTO hotfixes (instance, environment, service, actor, reason, command, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(h.instance, h.environment, h.service, h.actor, h.reason, JSON.stringify(h.command), now, h.expiresAt)
  return {
    ...h,
    id: Number(res.lastInsertRowid),
    status: 'running',
    exitCode: null,
    changes: [],
    createdAt: now,
  }
}

/** Completes a hotfix with its exit code and the changes it left. */
export function finishHotfix(db: Db, id: number, exitCode: number, changes: HotfixChange[]): void {
  db.prepare("UPDATE hotfixes SET status = 'recorded', exit_code = ?, changes = ? WHERE id = ?").run(
    exitCode,
    JSON.stringify(changes),
    id,
  )
}

/** Marks hotfixes a killed run left `running` as interrupted (called under the apply lock, so none is running). */
export function markInterruptedHotfixes(db: Db, environment: string): number {
  return db
    .prepare("UPDATE hotfixes SET status = 'interrupted' WHERE environment = ? AND status = 'running'")
    .run(environment).changes
}

/** Hotfixes of an environment (or of one instance), oldest first. */
export function listHotfixes(db: Db, opts: { environment?: string; instance?: string } = {}): HotfixRecord[] {
  const rows = (
    opts.instance !== undefined
      ? db.prepare('SELECT * FROM hotfixes WHERE instance = ? ORDER BY id').all(opts.instance)
      : opts.environment !== undefined
        ? db.prepare('SELECT * FROM hotfixes WHERE environment = ? ORDER BY id').all(opts.environment)
        : db.prepare('SELECT * FROM hotfixes ORDER BY id').all()
  ) as Row[]
  return rows.map(fromRow)
}
