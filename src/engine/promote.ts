import { GrailError } from '../errors.js'
import { deploy } from '../rollout/execute.js'
import type { RolloutResult } from '../rollout/types.js'
import { requireEnvironment } from '../spec/environments.js'
import { appendEvent, insertRelease, listReleases, revokedDigests } from '../state/index.js'
import { type Serving, servingNow } from './status.js'
import type { EngineEnv } from './types.js'

export interface PromoteResult {
  service: string
  from: { environment: string; release: number }
  to: { environment: string; release: number | null }
  imageDigest: string
  configDigest: string
  /** false when the target already ran exactly this image and config */
  deployed: boolean
  rollout: RolloutResult | null
}

/**
 * `grail promote SERVICE --from A --to B`: deploys in B the exact release active in A (same image digest,
 * same config bundle and digest) through B's normal rollout. Nothing is built. From then on B runs what
 * is promoted to it rather than the newest build of the image.
 */
export async function promote(target: EngineEnv, service: string, fromEnv: string): Promise<PromoteResult> {
  const toEnv = target.environment
  if (fromEnv === toEnv) {
    throw new GrailError('PROMOTE_SAME_ENV', `cannot promote ${service} from ${fromEnv} to itself`, {
      hint: 'name two environments: grail promote SERVICE --from staging --to prod',
    })
  }
  for (const env of [fromEnv, toEnv]) requireEnvironment(target.project, env)
  const svc = target.project.environments[toEnv]?.services[service]
  if (!svc || !target.project.environments[fromEnv]?.services[service]) {
    throw new GrailError('UNKNOWN_SERVICE', `service ${service} is not in both ${fromEnv} and ${toEnv}`, {
      hint: `services: ${Object.keys(target.project.services).join(', ')}`,
    })
  }
  const source = listReleases(target.db, fromEnv, service).find((r) => r.status === 'active')
  if (!source) {
    throw new GrailError('NOTHING_TO_PROMOTE', `${service} has no active release in ${fromEnv}`, {
      hint: `deploy it there first: grail apply ${fromEnv}`,
    })
  }
  const revoked = revokedDigests(target.db)[source.imageDigest]
  if (revoked !== undefined) {
    // the environment would run an image pulled out of service, and the next plan would replace it again
    throw new GrailError(
      'PROMOTE_REVOKED',
      `${service}: release ${fromEnv}#${source.number} runs image ${source.imageName}@${source.imageVersion}, which is revoked (${revoked}); it is not promoted to ${toEnv}`,
      {
        hint: `deploy a build that is not revoked to ${fromEnv} first (\`grail up ${fromEnv}\`), then promote it`,
      },
    )
  }
  const base = {
    service,
    from: { environment: fromEnv, release: source.number },
    imageDigest: source.imageDigest,
    configDigest: source.configDigest,
  }
  const active = listReleases(target.db, toEnv, service).find((r) => r.status === 'active')
  if (active && active.imageDigest === source.imageDigest && active.configDigest === source.configDigest) {
    return { ...base, to: { environment: toEnv, release: active.number }, deployed: false, rollout: null }
  }
  const release = insertRelease(target.db, {
    service,
    environment: toEnv,
    imageName: source.imageName,
    imageVersion: source.imageVersion,
    imageDigest: source.imageDigest,
    configDigest: source.configDigest,
    config: source.config,
    promotedFrom: `${fromEnv}#${source.number}`,
  })
  appendEvent(target.db, 'release.promoted', `${service}#${release.number}`, {
    from: `${fromEnv}#${source.number}`,
    to: toEnv,
    imageDigest: source.imageDigest,
    configDigest: source.configDigest,
  })
  const rollout = await deploy(target, svc, release)
  return { ...base, to: { environment: toEnv, release: release.number }, deployed: true, rollout }
}

/** What `grail promote --json` prints and the API answers: the promotion and what serves after it. */
export type PromoteReport = PromoteResult & { serving: Serving[] }

/** `promote`, then what serves in the target environment (the CLI and the API report the same). */
export async function promoteReport(
  target: EngineEnv,
  service: string,
  fromEnv: string,
): Promise<PromoteReport> {
  const r = await promote(target, service, fromEnv)
  return { ...r, serving: servingNow(target.db, target.project, target.environment) }
}
