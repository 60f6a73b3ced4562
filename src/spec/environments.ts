import { GrailError } from '../errors.js'
import type { Project } from './types.js'

/**
 * Fails with UNKNOWN_ENVIRONMENT unless the project declares environment `name`: every command that
 * takes an environment calls this before it reads or changes anything, so a typo is the same error,
 * with the same hint, in `status` as in `apply`. `inState` names the environments state has instances
 * or releases of: the hint names those the spec no longer declares, and with `allowInState` (`status`,
 * `logs`, `down`) they are accepted, so an environment removed from the spec can still be looked at and
 * taken down.
 */
export function requireEnvironment(
  project: Pick<Project, 'file' | 'environments'>,
  name: string,
  opts: { inState?: readonly string[]; allowInState?: boolean } = {},
): void {
  if (Object.hasOwn(project.environments, name)) {
    requireProvider(project, name)
    return
  }
  if (opts.allowInState && opts.inState?.includes(name)) return
  const names = Object.keys(project.environments)
  const leftover = (opts.inState ?? []).filter((e) => !names.includes(e))
  throw new GrailError('UNKNOWN_ENVIRONMENT', `${project.file}: no environment named "${name}"`, {
    hint: `environments this spec declares: ${names.join(', ')}${leftover.length > 0 ? `; state also has ${leftover.join(', ')} (which \`grail down\` can take down)` : ''}`,
  })
}

/** The providers this Grail can run services on. */
export const PROVIDERS: readonly string[] = ['local']

/**
 * Fails with PROVIDER_UNAVAILABLE when environment `name` names a provider this Grail does not have:
 * running its services on the local provider instead would put them somewhere the spec does not say.
 */
function requireProvider(project: Pick<Project, 'file' | 'environments'>, name: string): void {
  const provider = project.environments[name]?.provider ?? 'local'
  if (PROVIDERS.includes(provider)) return
  throw new GrailError(
    'PROVIDER_UNAVAILABLE',
    `${project.file}: environments.${name}.provider is "${provider}", a provider this Grail does not have`,
    {
      hint: `providers this Grail has: ${PROVIDERS.join(', ')}; set environments.${name}.provider to one of them, or run another environment`,
    },
  )
}
