/**
 * From the schema's output to the engine's `Project`: names filled in, host paths made absolute against
 * the spec's directory, SOURCE_DATE_EPOCH applied, and environment overrides merged into each service.
 */
import { dirname, resolve } from 'node:path'
import { DEFAULT_REDACT_KEYS, secretKeyMatcher } from '../util/redact.js'
import { problemsFromIssues, valueAt } from './issues.js'
import type { RawProblem } from './problems.js'
import { repositoryPathProblem } from './registry-ref.js'
import type { GrailConfigParsed } from './schema.js'
import { isPlainObject } from './schema-common.js'
import type { ParsedRegistry } from './schema-registry.js'
import { serviceSchema } from './schema-service.js'
import type { BaseSource, EnvironmentSpec, ImageSpec, Project, RegistrySpec, ServiceSpec } from './types.js'

/** Keys whose value replaces the service's instead of merging into it (its variants do not mix). */
const REPLACED = new Set(['healthcheck', 'publish'])

/**
 * Deep-merges an environment's override into a service as written: mappings merge key by key, lists and
 * scalars replace, and `healthcheck` / `publish` replace as a whole.
 */
export function mergeOverride(service: unknown, override: unknown, top = true): unknown {
  if (!isPlainObject(service) || !isPlainObject(override)) return override === undefined ? service : override
  const out: Record<string, unknown> = { ...service }
  for (const [k, v] of Object.entries(override)) {
    out[k] = top && REPLACED.has(k) ? v : mergeOverride(service[k], v, false)
  }
  return out
}

function resolveBase(base: BaseSource, dir: string): BaseSource {
  if (base.kind === 'oci' || base.kind === 'rootfs') return { ...base, path: resolve(dir, base.path) }
  return base
}

/**
 * A registry as the engine uses it: the prefix defaulted to the project name (which must then be a valid
 * repository path), `ca` and `auth.file` made absolute against the spec's directory.
 */
function resolveRegistry(
  r: ParsedRegistry,
  project: string,
  dir: string,
  path: PropertyKey[],
  problems: RawProblem[],
): RegistrySpec {
  let prefix = r.prefix
  if (prefix === undefined) {
    prefix = project
    const problem = repositoryPathProblem(project, 'the project name (the default prefix)')
    if (problem) {
      problems.push({
        path,
        at: 'key',
        message: problem.message,
        hint: `set ${[...path.map(String), 'prefix'].join('.')}, e.g. prefix: ${project.replace(/-+$/, '') || 'myteam'}`,
      })
    }
  }
  return {
    url: r.url,
    host: r.host,
    prefix,
    auth: r.auth.kind === 'file' ? { kind: 'file', path: resolve(dir, r.auth.path) } : r.auth,
    ...(r.ca !== undefined ? { ca: resolve(dir, r.ca) } : {}),
    insecure: r.insecure,
    cache: { ...r.cache },
  }
}

export interface NormaliseOptions {
  /** absolute path of the spec file */
  file: string
  /** the raw document, to merge environment overrides as written */
  raw: unknown
  /** SOURCE_DATE_EPOCH, already validated */
  sourceDateEpoch?: number
}

/**
 * A key or file the service marks secret stays secret when an environment overrides its value with a
 * plain one: the override changes the value, not what kind of value it is.
 */
function keepSecret(base: ServiceSpec, merged: Omit<ServiceSpec, 'name'>): Pick<ServiceSpec, 'secret'> {
  const union = (a: string[] = [], b: string[] = [], present: Record<string, string>) =>
    [...new Set([...a, ...b])].filter((k) => k in present).sort()
  return {
    secret: {
      env: union(base.secret?.env, merged.secret?.env, merged.env),
      files: union(base.secret?.files, merged.secret?.files, merged.files),
    },
  }
}

function mergedService(
  name: string,
  env: string,
  base: ServiceSpec,
  opts: NormaliseOptions,
  problems: RawProblem[],
): ServiceSpec {
  const written = valueAt(opts.raw, ['services', name])
  const override = valueAt(opts.raw, ['environments', env, 'services', name])
  if (override === undefined) return structuredClone(base)
  const merged = mergeOverride(written, override)
  const result = serviceSchema.safeParse(merged, { reportInput: true })
  if (result.success) return { name, ...result.data, ...keepSecret(base, result.data) }
  for (const p of problemsFromIssues(result.error.issues, serviceSchema, merged)) {
    const fromOverride = valueAt(override, p.path) !== undefined
    const prefix = fromOverride ? ['environments', env, 'services', name] : ['services', name]
    problems.push({
      ...p,
      path: [...prefix, ...p.path],
      ...(p.pointPath ? { pointPath: [...prefix, ...p.pointPath] } : {}),
      message: `${p.message} (with the overrides of environment "${env}")`,
    })
  }
  return base
}

/** Builds the `Project`; problems found while merging environment overrides are returned, not thrown. */
export function normaliseProject(
  parsed: GrailConfigParsed,
  opts: NormaliseOptions,
): { project: Project; problems: RawProblem[] } {
  const dir = dirname(opts.file)
  const problems: RawProblem[] = []
  const images: Record<string, ImageSpec> = {}
  const secretKey = secretKeyMatcher(parsed.policies.redact?.keys ?? DEFAULT_REDACT_KEYS)
  for (const [name, img] of Object.entries(parsed.images)) {
    img.steps.forEach((step, i) => {
      if (step.kind !== 'env') return
      for (const key of Object.keys(step.env).filter(secretKey)) {
        // an image's env is in its config for anyone who pulls it, and in every instance's inspect
        problems.push({
          path: ['images', name, 'steps', i, 'env', key],
          at: 'key',
          message: `${key} is named like a secret (policies.redact.keys), and an env step bakes it into the image`,
          hint: `set it on the service instead, as services.<name>.env.${key}: {value: …, secret: true}; or narrow policies.redact.keys`,
        })
      }
    })
    const epoch = img.sourceDateEpoch ?? opts.sourceDateEpoch
    images[name] = {
      name,
      base: resolveBase(img.base, dir),
      context: resolve(dir, img.context),
      steps: img.steps,
      ...(epoch === undefined ? {} : { sourceDateEpoch: epoch }),
      ...(img.resources === undefined ? {} : { resources: img.resources }),
    }
  }
  const services: Record<string, ServiceSpec> = {}
  for (const [name, svc] of Object.entries(parsed.services)) services[name] = { name, ...svc }
  const registry =
    parsed.registry === undefined
      ? undefined
      : resolveRegistry(parsed.registry, parsed.project, dir, ['registry'], problems)
  const environments: Record<string, EnvironmentSpec> = {}
  for (const [name, env] of Object.entries(parsed.environments)) {
    const merged: Record<string, ServiceSpec> = {}
    for (const [svc, spec] of Object.entries(services))
      merged[svc] = mergedService(svc, name, spec, opts, problems)
    environments[name] = {
      name,
      provider: env.provider,
      ...(env.endpoint === undefined ? {} : { endpoint: env.endpoint }),
      services: merged,
    }
    // an environment's registry replaces the project's as a whole (auth and CA belong to one registry)
    const own =
      env.registry === undefined
        ? registry
        : resolveRegistry(env.registry, parsed.project, dir, ['environments', name, 'registry'], problems)
    if (own !== undefined) environments[name].registry = structuredClone(own)
  }
  const project: Project = {
    name: parsed.project,
    file: opts.file,
    dir,
    images,
    services,
    environments,
    policies: parsed.policies,
    ...(registry === undefined ? {} : { registry }),
  }
  return { project, problems }
}
