import { GrailError } from '../errors.js'
import type { DesiredService } from '../plan/index.js'
import { rollbackTarget } from '../plan/index.js'
import type { EngineEnv } from './types.js'
import { desiredServices } from './apply.js'
import { deploy } from '../rollout/execute.js'
import type { RolloutResult } from '../rollout/types.js'
import type { Db, ReleaseRecord } from '../state/index.js'
import { listReleases, revokedDigests } from '../state/index.js'
import type { Project, ServiceSpec } from '../spec/types.js'

/** What `grail rollback` did, and what the next apply will do to it. */
export type RollbackResult = RolloutResult & {
  environment: string
  /** the environment runs what is promoted to it, so the next apply deploys its newest promotion */
  promoted: boolean
  /** what the next apply deploys instead of the release rolled back to; null when it keeps it */
  nextApply: string | null
}

/**
 * The release `grail rollback SERVICE [RELEASE]` re-deploys: the one asked for, or the newest earlier
 * release whose image is not revoked. A service the environment does not have, a release that is not
 * there, and a revoked image are user errors naming the releases there are.
 */
export function rollbackTargetOf(
  a: { project: Project; environment: string; db: Db },
  service: string,
  release?: number,
): { svc: ServiceSpec; target: ReleaseRecord } {
  const svc = a.project.environments[a.environment]?.services[service]
  if (!svc)
    throw new GrailError('UNKNOWN_SERVICE', `no service "${service}" in ${a.environment}`, {
      hint: 'see `grail status`',
    })
  const releases = listReleases(a.db, a.environment, service)
  const choice = rollbackTarget(releases, revokedDigests(a.db), release)
  const list = releases.map((r) => `#${r.number} ${r.status}`).join(', ') || 'none'
  if (choice.kind === 'revoked') {
    throw new GrailError('RELEASE_REVOKED', `${a.environment}: ${service}: ${choice.reason}`, {
      hint: `roll back to a release whose image is not revoked (releases: ${list}), or unrevoke it (\`grail unrevoke ${choice.release.imageName}@${choice.release.imageVersion}\`)`,
    })
  }
  if (choice.kind === 'none') {
    throw new GrailError('NO_SUCH_RELEASE', `${a.environment}: ${service}: ${choice.reason}`, {
      hint: `releases: ${list}`,
    })
  }
  return { svc, target: choice.release }
}

/**
 * What the next apply deploys in place of `target`, given what the spec wants for the service now
 * (rollback pins nothing): null when that is `target`'s image and config, else the version it deploys
 * (or a new build of the service's image when the catalog has none yet).
 */
export function nextApplyAfter(
  want: DesiredService | undefined,
  target: ReleaseRecord,
  svc: ServiceSpec,
): string | null {
  if (want?.image?.digest === target.imageDigest && want.configDigest === target.configDigest) return null
  if (!want?.image) return `a new build of ${svc.image}`
  return `${want.image.name} v${want.image.version}${want.configDigest === target.configDigest ? '' : " with the spec's config"}`
}

/**
 * `grail rollback`: re-deploys an earlier release of a service through the normal rollout (health gate,
 * automatic rollback), and says whether the next apply undoes it. Under the apply lock.
 */
export async function rollbackService(
  a: EngineEnv,
  opts: { service: string; release?: number },
): Promise<RollbackResult> {
  const { svc, target } = rollbackTargetOf(a, opts.service, opts.release)
  const r = await deploy(a, svc, target)
  if (!r.ok) return { ...r, environment: a.environment, promoted: false, nextApply: null }
  const want = (await desiredServices(a)).find((d) => d.service === opts.service)
  return {
    ...r,
    environment: a.environment,
    promoted: want?.promoted === true,
    nextApply: nextApplyAfter(want, target, svc),
  }
}
