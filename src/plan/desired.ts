import { GrailError } from '../errors.js'
import { promotedReleases } from './promoted.js'
import type { DesiredService, ImageView, ReleaseView, ServiceFacts } from './types.js'

/** The newest version of an image that is neither revoked nor deprecated. */
function newestActive(versions: readonly ImageView[]): ImageView | undefined {
  return versions
    .filter((v) => v.status === 'active')
    .reduce<ImageView | undefined>(
      (best, v) => (best === undefined || v.version > best.version ? v : best),
      undefined,
    )
}

/**
 * What one service should run: the version grail.lock pins (`--locked`); else, in an environment that
 * receives promotions, what was promoted (the planner picks which); else the catalog's version whose build
 * key equals what the spec and its sources give now (not the newest build: after a revert that is an
 * older version). When the catalog has no version of that key the service needs a build. A revoked
 * version is not deployed even when the spec builds it: the newest active one stands in, and when there
 * is none the environment cannot be planned (IMAGE_REVOKED, or IMAGE_NOT_BUILT when nothing was built).
 */
export function desiredService(
  environment: string,
  svc: ServiceFacts,
  releases: readonly ReleaseView[],
): DesiredService {
  const base = {
    service: svc.service,
    replicas: svc.replicas,
    configDigest: svc.configDigest,
    ...(svc.crashLoop ? { crashLoop: svc.crashLoop } : {}),
  }
  if (svc.locked) return { ...base, image: svc.locked }
  if (promotedReleases(releases).length > 0) return { ...base, image: null, promoted: true }
  const current = svc.current
  if (current !== undefined && !current.built && svc.versions.length > 0) {
    return { ...base, image: null, build: { image: svc.image, reason: current.changed } }
  }
  const image =
    current?.built && current.image.status !== 'revoked' ? current.image : newestActive(svc.versions)
  if (!image && svc.versions.length > 0) {
    throw new GrailError(
      'IMAGE_REVOKED',
      `${environment}: service ${svc.service}: every version of image ${svc.image} is revoked`,
      {
        hint: `build a new version (\`grail build ${svc.image}\`) or unrevoke one (\`grail unrevoke ${svc.image}@N\`)`,
      },
    )
  }
  if (!image) {
    throw new GrailError(
      'IMAGE_NOT_BUILT',
      `service ${svc.service} needs image ${svc.image}, which has not been built`,
      { hint: `run \`grail build ${svc.image}\` (or \`grail up\`, which builds first)` },
    )
  }
  return { ...base, image: { name: image.name, version: image.version, digest: image.digest } }
}

/** What every service of the environment should run, in the order of `services`. */
export function desiredServices(
  environment: string,
  services: readonly ServiceFacts[],
  releases: Readonly<Record<string, readonly ReleaseView[]>>,
): DesiredService[] {
  return services.map((s) => desiredService(environment, s, releases[s.service] ?? []))
}
