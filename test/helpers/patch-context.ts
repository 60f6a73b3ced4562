import pino from 'pino'
import { openEnvironment } from '../../src/engine/environment.js'
import { resolveHome } from '../../src/home.js'
import { EventFeed, type ServerContext } from '../../src/server/context.js'
import { loadProject } from '../../src/spec/index.js'
import type { Project } from '../../src/spec/types.js'
import { acquireLock, openDb, releaseLock } from '../../src/state/index.js'

/**
 * A ServerContext for a project directory, as `grail serve` makes one: the spec loaded (again by
 * `reload()`, after the test edits it), state.db opened, environments opened on demand under the apply
 * lock. `reconciled` lists the environments the code asked a reconcile pass for.
 */
export async function patchContext(
  dir: string,
): Promise<ServerContext & { reload(): Promise<void>; reconciled: string[]; close(): void }> {
  let project: Project = await loadProject(dir, { cwd: dir, env: {} })
  const home = resolveHome(project.dir)
  const db = openDb(home.db)
  const events = new EventFeed(db)
  const reconciled: string[] = []
  return {
    project: () => project,
    home,
    db,
    environments: Object.keys(project.environments),
    log: pino({ level: 'silent' }),
    events,
    async withEnvironment(env, opts, fn) {
      if (opts.lock) acquireLock(db, 'apply')
      try {
        return await fn(await openEnvironment({ project, environment: env, home, db }))
      } finally {
        if (opts.lock) releaseLock(db, 'apply')
      }
    },
    reconcileSoon(env) {
      reconciled.push(env)
    },
    stats: () => [],
    async reload() {
      project = await loadProject(dir, { cwd: dir, env: {} })
    },
    reconciled,
    close() {
      events.close()
      db.close()
    },
  }
}
