import { GrailError } from '../errors.js'
import { requireProvider } from '../runtime/factory.js'
import type { Project } from './types.js'

/**
 * Fails with UNKNOWN_ENVIRONMENT unless the project declares environment `name`: every command that
 * takes an environment calls this before it reads or changes anything, so a typo is the same error,
 * with the same hint, in `status` as in `apply`. `inState` names the environments state has instances
 * or releases of: the hint names those the spec no longer declares, and with `allowInState` (`status`,
 * `logs`, `down`) they are accepted, so an environment removed from the spec can still be looked at and
 * taken down. A declared environment whose provider this Grail does not have is PROVIDER_UNAVAILABLE
 * (checked by the runtime factory, the one place that knows the providers).
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
