import type { Db } from './db.js'

/** What state remembers of the spec, so that commands can work from state while the spec is broken. */
export interface ProjectMeta {
  project: string
  /** environment names in the spec's order */
  environments: string[]
}

/** Records the project's name and environments (written only when they changed, so reads stay reads). */
export function recordProjectMeta(db: Db, meta: ProjectMeta): void {
  const value = JSON.stringify(meta)
  const row = db.prepare("SELECT value FROM meta WHERE key = 'project'").get() as
    | { value: string }
    | undefined
  if (row?.value === value) return
  db.prepare(
    "INSERT INTO meta (key, value) VALUES ('project', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  ).run(value)
}

/** The project's name and environments as last recorded, with every environment state has records of. */
export function projectMeta(db: Db): ProjectMeta | undefined {
  const row = db.prepare("SELECT value FROM meta WHERE key = 'project'").get() as
    | { value: string }
    | undefined
  if (!row) return undefined
  const meta = JSON.parse(row.value) as ProjectMeta
  const used = db
    .prepare('SELECT environment FROM releases UNION SELECT environment FROM instances ORDER BY environment')
    .all() as Array<{ environment: string }>
  const environments = [...meta.environments]
  for (const { environment } of used) if (!environments.includes(environment)) environments.push(environment)
  return { project: meta.project, environments }
}

/** The services state has releases of in an environment. */
export function servicesInState(db: Db, environment: string): string[] {
  const rows = db
    .prepare(
      'SELECT service FROM releases WHERE environment = ? UNION SELECT service FROM instances WHERE environment = ? ORDER BY service',
    )
    .all(environment, environment) as Array<{ service: string }>
  return rows.map((r) => r.service)
}
