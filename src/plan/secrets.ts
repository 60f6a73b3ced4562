import type { Project } from '../spec/types.js'
import { DEFAULT_REDACT_KEYS, makeRedactor, type Redactor, secretKeyMatcher } from '../util/redact.js'
import type { ConfigBundle } from './config-bundle.js'

/** What output shows instead of an env value or a deploy file's content, unless `--show-values`. */
export const HIDDEN = '[hidden]'

/** The secret values of a project, each with where it comes from ("env DB_PASSWORD of web"). */
export interface ProjectSecrets {
  redactor: Redactor
  /** value → a description of where it comes from, for messages that must not show the value */
  names: Map<string, string>
}

/** The key globs of `policies.redact.keys`, or the defaults for a spec from before that key existed. */
export function redactKeys(project: Pick<Project, 'policies'>): readonly string[] {
  return project.policies.redact?.keys ?? DEFAULT_REDACT_KEYS
}

/**
 * Every secret value the spec and the given release configs hold: env values a service marks `secret`
 * or whose key matches `policies.redact.keys`, and the content of deploy files marked `secret`.
 * Releases count too, since an instance of an older release (a rollback target) may still run.
 */
export function projectSecrets(
  project: Project,
  bundles: ReadonlyArray<{ service: string; config: unknown }>,
): ProjectSecrets {
  const keyGlobs = redactKeys(project)
  const isKey = secretKeyMatcher(keyGlobs)
  const names = new Map<string, string>()
  const add = (value: string, what: string) => {
    if (!names.has(value)) names.set(value, what)
  }
  const addBundle = (service: string, b: Pick<Partial<ConfigBundle>, 'env' | 'files' | 'secret'>) => {
    for (const [k, v] of Object.entries(b.env ?? {}))
      if (b.secret?.env.includes(k) || isKey(k)) add(v, `the value of env ${k} of ${service}`)
    for (const path of b.secret?.files ?? []) {
      const content = b.files?.[path]
      if (content === undefined) continue
      add(content, `the content of ${path} of ${service}`)
      // a secret file's lines are secrets too: an app often prints or copies one line of it
      for (const line of content.split('\n'))
        if (line.trim() !== '') add(line.trim(), `a line of ${path} of ${service}`)
    }
  }
  for (const env of Object.values(project.environments))
    for (const svc of Object.values(env.services)) addBundle(svc.name, svc)
  for (const svc of Object.values(project.services)) addBundle(svc.name, svc)
  for (const r of bundles) if (isBundle(r.config)) addBundle(r.service, r.config)
  return { redactor: makeRedactor(names.keys(), keyGlobs), names }
}

function isBundle(v: unknown): v is Partial<ConfigBundle> {
  return typeof v === 'object' && v !== null && 'env' in v
}

/**
 * A release config as output shows it: env keys with their values hidden and deploy-file paths with
 * their size instead of their content.
 */
export function concealBundle(config: unknown): unknown {
  if (!isBundle(config)) return config
  return {
    ...config,
    env: Object.fromEntries(Object.keys(config.env ?? {}).map((k) => [k, HIDDEN])),
    files: Object.fromEntries(
      Object.entries(config.files ?? {}).map(([p, c]) => [p, `${HIDDEN} ${Buffer.byteLength(c)} bytes`]),
    ),
  }
}
