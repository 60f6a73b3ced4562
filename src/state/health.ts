import type { Db } from './db.js'

/** The last health probe of an instance after its rollout (a short run of probes, summarised). */
export interface ProbeRecord {
  instance: string
  /** ISO time of the last probe */
  at: string
  ok: boolean
  /** what the last probe saw: "HTTP 404", "connection refused" */
  detail: string
  /** failing probes in a row, up to and including the last one */
  failures: number
}

interface Row {
  instance: string
  at: string
  ok: number
  detail: string
  failures: number
}

/** Records (replaces) the last probe of an instance. */
export function recordProbe(db: Db, p: ProbeRecord): void {
  db.prepare(
    `INSERT INTO health_probes (instance, at, ok, detail, failures) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (instance) DO UPDATE SET at = excluded.at, ok = excluded.ok, detail = excluded.detail,
       failures = excluded.failures`,
  ).run(p.instance, p.at, p.ok ? 1 : 0, p.detail, p.failures)
}

/** The last recorded probe of each of these instances (those never probed are absent). */
export function lastProbes(db: Db, instances: readonly string[]): Map<string, ProbeRecord> {
  const out = new Map<string, ProbeRecord>()
  const stmt = db.prepare('SELECT * FROM health_probes WHERE instance = ?')
  for (const id of instances) {
    const r = stmt.get(id) as Row | undefined
    if (r)
      out.set(id, { instance: r.instance, at: r.at, ok: r.ok === 1, detail: r.detail, failures: r.failures })
  }
  return out
}
