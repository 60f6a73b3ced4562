/**
 * The one place that knows which providers this Grail has and makes them: `environments.<env>.provider`
 * is honoured here, and a provider that is not available is an error naming the key, never a silent
 * fallback to local runc. Providers are loaded when made, so a command that opens no environment loads
 * none of them.
 */
import { GrailError } from '../errors.js'
import type { GrailHome } from '../home.js'
import type { OciStore } from '../oci/store.js'
import type { Project } from '../spec/types.js'
import type { RuntimeProvider } from './types.js'

/** The providers this Grail can run services on (the spec also names docker and swarm, not built yet). */
export const PROVIDERS = ['local'] as const
export type ProviderName = (typeof PROVIDERS)[number]

/** What a provider is made from: the Grail home it keeps its instances under and the image store. */
export interface ProviderDeps {
  home: GrailHome
  store: OciStore
}

const isAvailable = (name: string): name is ProviderName => (PROVIDERS as readonly string[]).includes(name)

/**
 * The provider environment `environment` names (default `local`), checked: PROVIDER_UNAVAILABLE, naming
 * the key path, the value and the providers there are, when this Grail does not have it. Running its
 * services on another provider instead would put them somewhere the spec does not say.
 */
export function requireProvider(
  project: Pick<Project, 'file' | 'environments'>,
  environment: string,
): ProviderName {
  const name = project.environments[environment]?.provider ?? 'local'
  if (isAvailable(name)) return name
  throw new GrailError(
    'PROVIDER_UNAVAILABLE',
    `${project.file}: environments.${environment}.provider is "${name}", a provider this Grail does not have`,
    {
      hint: `providers this Grail has: ${PROVIDERS.join(', ')}; set environments.${environment}.provider to one of them, or run another environment`,
    },
  )
}

/** Makes the provider named `name` (one of PROVIDERS). */
export async function createProviderNamed(name: ProviderName, deps: ProviderDeps): Promise<RuntimeProvider> {
  switch (name) {
    case 'local': {
      const { createLocalProvider } = await import('./local/index.js')
      return createLocalProvider(deps)
    }
  }
}

/** The provider of environment `environment` of `project`; PROVIDER_UNAVAILABLE when there is none. */
export async function createProvider(
  project: Pick<Project, 'file' | 'environments'>,
  environment: string,
  deps: ProviderDeps,
): Promise<RuntimeProvider> {
  return createProviderNamed(requireProvider(project, environment), deps)
}

/**
 * Every provider that can hold instances of a Grail home (for `grail state reset`, which must stop
 * everything whatever the lost state or the spec says).
 */
export async function homeProviders(deps: ProviderDeps): Promise<RuntimeProvider[]> {
  return Promise.all(PROVIDERS.map((name) => createProviderNamed(name, deps)))
}
