import type { RegistryClient } from '../../oci/registry/types.js'
import type { Project, RegistrySpec } from '../../spec/types.js'
import { GrailError } from '../../errors.js'

/** A registry as the project configured it: a client with its credentials, and where each image lives. */
export interface Registry {
  spec: RegistrySpec
  client: RegistryClient
  /** the repository of a Grail image: `prefix/image` */
  repository(image: string): string
  /** `host/prefix/image` */
  reference(image: string): string
  /** the credential strings (password, token): what output and logs must redact */
  secrets: string[]
}

/** Connects to a registry: credentials resolved from the spec's source (never stored), CA and scheme checked. */
export async function connectRegistry(spec: RegistrySpec): Promise<Registry> {
  const { createRegistryClient, resolveCredentials, redactable } = await import('../../oci/registry/index.js')
  const credentials = await resolveCredentials(spec.host, spec.auth)
  const client = createRegistryClient({
    url: spec.url,
    credentials,
    ...(spec.ca !== undefined ? { caFile: spec.ca } : {}),
    insecure: spec.insecure,
  })
  const repository = (image: string) => `${spec.prefix}/${image}`
  return {
    spec,
    client,
    repository,
    reference: (image) => `${spec.host}/${repository(image)}`,
    secrets: redactable(credentials),
  }
}

/**
 * The registry of an environment (its own `registry:`, else the project's), or of the project when no
 * environment is named. `required` turns a missing one into an error that says where to declare it.
 */
export function registrySpecOf(project: Project, environment?: string): RegistrySpec | undefined {
  if (environment !== undefined) return project.environments[environment]?.registry ?? project.registry
  return project.registry
}

export function requireRegistry(project: Project, environment?: string): RegistrySpec {
  const spec = registrySpecOf(project, environment)
  if (spec) return spec
  throw new GrailError(
    'REGISTRY_NOT_CONFIGURED',
    `${project.file}: no registry is configured${environment !== undefined ? ` for environment ${environment}` : ''}`,
    {
      hint: 'add `registry: {url: https://HOST[:PORT]}` at the top of grail.yaml (or under the environment); see docs/registry.md',
    },
  )
}

/**
 * The settings to reach `host` with: the project's (or an environment's) registry when it is that host
 * (its credentials and CA), else https with the system's CAs and the docker config's credentials.
 */
export function registrySpecForHost(project: Project, host: string): RegistrySpec {
  const declared = [project.registry, ...Object.values(project.environments).map((e) => e.registry)]
  const match = declared.find((r) => r !== undefined && r.host === host.toLowerCase())
  if (match) return match
  return {
    url: `https://${host.toLowerCase()}`,
    host: host.toLowerCase(),
    prefix: project.name,
    auth: { kind: 'auto' },
    insecure: false,
    cache: { from: false, to: false },
  }
}
