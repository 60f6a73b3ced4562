import { dirname, join } from 'node:path'
import { GrailError } from '../errors.js'
import type { Project } from '../spec/types.js'
import type { Db } from '../state/index.js'
import { projectMeta, servicesInState } from '../state/index.js'
import { SPEC_FILES } from './project.js'

/**
 * The project as state knows it, for status, logs and down while the spec cannot be read: its name and
 * environments as recorded when the spec last loaded, and per environment the services state has
 * releases or instances of. Images, service settings and policies are unknown, so it is empty there.
 * Warns on stderr (as JSON with `json`) that the spec is broken; refuses when state recorded nothing.
 */
export function projectFromState(
  db: Db,
  opts: { target: string; envArg: string | undefined; specError: unknown; json: boolean },
): Project {
  const err = opts.specError as GrailError
  const meta = projectMeta(db)
  if (!meta) {
    throw new GrailError(err.code, err.message, {
      details: err.details,
      hint: `${err.hint ? `${err.hint}; ` : ''}state has no record of this project yet to work from`,
    })
  }
  const message = `${err.message}; working from the state of project ${meta.project} (fix the spec for everything else)`
  if (opts.json) process.stderr.write(`${JSON.stringify({ warning: { code: err.code, message } })}\n`)
  else process.stderr.write(`warning: ${message}\n`)
  const environments = meta.environments.length > 0 ? meta.environments : ['local']
  if (opts.envArg !== undefined && !environments.includes(opts.envArg)) {
    throw new GrailError('UNKNOWN_ENVIRONMENT', `state has no environment "${opts.envArg}"`, {
      hint: `environments in state: ${environments.join(', ')}`,
    })
  }
  const file = /\.(ya?ml|ts)$/.test(opts.target) ? opts.target : join(opts.target, SPEC_FILES[0] as string)
  return {
    name: meta.project,
    file,
    dir: dirname(file),
    images: {},
    services: {},
    environments: Object.fromEntries(
      environments.map((name) => [name, { name, provider: 'local' as const, services: {} }]),
    ),
    policies: {
      gc: { keepVersions: 5, keepDeployedWithin: 14 * 86_400_000, keepReleases: 3 },
      disruptionBudget: { maxUnavailable: 1, minHealthy: 0 },
      hotfix: { maxTtl: 86_400_000, requireReason: true },
    },
  }
}

/** The services of an environment: those the project declares and those state has records of. */
export function servicesOf(db: Db, project: Project, environment: string): string[] {
  return [...new Set([...Object.keys(project.services), ...servicesInState(db, environment)])]
}
