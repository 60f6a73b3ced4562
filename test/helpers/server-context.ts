import pino from 'pino'
import { openEnvironment } from '../../src/engine/environment.js'
import { resolveHome } from '../../src/home.js'
import { projectSecrets } from '../../src/plan/secrets.js'
import { EventFeed, type ReconcileStats, type ServerContext } from '../../src/server/context.js'
import { loadProject } from '../../src/spec/index.js'
import type { Project } from '../../src/spec/types.js'
import { acquireLock, allReleases, openDb, releaseLock, useRedactor } from '../../src/state/index.js'

/** A ServerContext over a project dir, as `grail serve` builds one, plus what the test observes. */
export interface TestContext extends ServerContext {
  /** environments reconcileSoon was asked for, in order */
  reconcileRequests: string[]
  /** sets what stats() answers */
  setStats(stats: ReconcileStats[]): void
  close(): void
}

/**
 * Opens the project in `dir` the way the daemon does: the spec loaded once, state.db opened, each
 * environment opened per call (with the apply lock when asked: LOCKED at once when it is held), the
 * event feed polling state.db. reconcileSoon only records what it was asked.
 */
export async function testContext(dir: string, opts: { environments?: string[] } = {}): Promise<TestContext> {
  const project: Project = await loadProject(dir)
  const home = resolveHome(project.dir)
  const db = openDb(home.db)
  const events = new EventFeed(db, 50)
  const reconcileRequests: string[] = []
  let stats: ReconcileStats[] = []
  return {
    project: () => project,
    home,
    db,
    environments: opts.environments ?? Object.keys(project.environments),
    log: pino({ level: 'silent' }),
    events,
    async withEnvironment(env, o, fn) {
      // the event log and errors never hold the project's secrets (as the CLI's withEnvironment does)
      useRedactor(db, projectSecrets(project, allReleases(db)).redactor)
      if (o.lock) acquireLock(db, 'apply')
      try {
        return await fn(await openEnvironment({ project, environment: env, home, db }))
      } finally {
        if (o.lock) releaseLock(db, 'apply')
      }
    },
    reconcileSoon(env) {
      reconcileRequests.push(env)
    },
    stats: () => stats,
    reconcileRequests,
    setStats(s) {
      stats = s
    },
    close() {
      events.close()
      db.close()
    },
  }
}
