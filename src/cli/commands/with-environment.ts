import type { Project } from '../../spec/types.js'
import type { GlobalOptions } from '../project.js'
import { findSpecFile } from '../project.js'

/** An opened environment; the type only, so this module loads nothing until a command runs. */
type Env = Awaited<ReturnType<typeof import('../../engine/environment.js')['openEnvironment']>>

/**
 * Loads the project and opens an environment's state, provider and proxies; closes the database after.
 * With `fromState`, an invalid spec is not the end: the command (status, logs, down) works on what state
 * recorded of the project (its name and environments), after a warning that the spec is broken.
 */
export async function withEnvironment<T>(
  g: GlobalOptions,
  envArg: string | undefined,
  /** take the apply lock: fail at once when it is held (true), or wait for its holder (`wait`) */
  opts: { lock: boolean | 'wait'; fromState?: boolean },
  fn: (a: Env, project: Project) => Promise<T>,
): Promise<T> {
  const [{ loadProjectCached }, { resolveHome }, state, { openEnvironment }] = await Promise.all([
    import('../load-project.js'),
    import('../../home.js'),
    import('../../state/index.js'),
    import('../../engine/environment.js'),
  ])
  const target = findSpecFile(g)
  let project: Project | undefined
  let specError: unknown
  try {
    project = await loadProjectCached(target)
  } catch (err) {
    const { GrailError } = await import('../../errors.js')
    if (!opts.fromState || !(err instanceof GrailError) || err.code !== 'SPEC_INVALID') throw err
    specError = err
  }
  const { projectHome } = await import('../project.js')
  const home = project ? resolveHome(project.dir) : projectHome(g)
  const db = state.openDb(home.db)
  try {
    if (project) {
      state.recordProjectMeta(db, { project: project.name, environments: Object.keys(project.environments) })
    } else {
      const { projectFromState } = await import('../project-from-state.js')
      project = projectFromState(db, { target, envArg, specError, json: g.json === true })
    }
    const environment = envArg ?? Object.keys(project.environments)[0] ?? 'local'
    const { requireEnvironment } = await import('../../spec/environments.js')
    // status, logs and down also reach an environment the spec dropped but state still has
    const inState = state.projectMeta(db)?.environments ?? []
    requireEnvironment(project, environment, { inState, allowInState: opts.fromState === true })
    await useProjectSecrets(g, project, db)
    if (opts.lock === 'wait') {
      const { out, style } = await import('../render.js')
      await state.waitForLock(db, 'apply', {
        onWait: (held) => {
          if (!g.json) out(style.yellow(`waiting: ${held}`))
        },
      })
    } else if (opts.lock) state.acquireLock(db, 'apply')
    try {
      return await fn(await openEnvironment({ project, environment, home, db }), project)
    } finally {
      if (opts.lock) state.releaseLock(db, 'apply')
    }
  } finally {
    db.close()
  }
}

/**
 * Tells the event log and the output what the project's secrets are (the spec's and those of every
 * release in state), so that neither stores nor prints them; `--show-values` lets output show them.
 */
export async function useProjectSecrets(
  g: GlobalOptions,
  project: Project,
  db: import('../../state/index.js').Db,
): Promise<void> {
  const [{ projectSecrets }, state, { setOutputSecrets }] = await Promise.all([
    import('../../plan/secrets.js'),
    import('../../state/index.js'),
    import('../render.js'),
  ])
  const { redactor } = projectSecrets(project, state.allReleases(db))
  state.useRedactor(db, redactor)
  setOutputSecrets(redactor, g.showValues === true)
}
