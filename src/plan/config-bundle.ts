import { createHash } from 'node:crypto'
import { canonicalJson } from '../oci/canonical-json.js'
import type { Digest } from '../oci/digest.js'
import type { Resources, ServiceSpec } from '../spec/types.js'

/** A service's deploy-time configuration: what a config-only release changes. */
export interface ConfigBundle {
  env: Record<string, string>
  files: Record<string, string>
  /** what else shapes the running instance without being in the image */
  port: number | null
  volumes: Array<{ name: string; path: string }>
  /** env keys and file paths marked secret; absent when none, so older bundles keep their digest */
  secret?: { env: string[]; files: string[] }
  /** present only when set, so bundles (and their digests) of services without them stay as they were */
  resources?: Resources
  /** present only for the opt-out (`host`): the default keeps older bundles' digests */
  network?: 'host'
  userns?: 'host'
}

/** The bundle of a service as the spec declares it, with keys in a fixed order. */
export function configBundleOf(service: ServiceSpec): ConfigBundle {
  return {
    env: service.env,
    files: service.files,
    port: service.port ?? null,
    volumes: service.volumes.map((v) => ({ name: v.name, path: v.path })),
    ...(service.secret && (service.secret.env.length > 0 || service.secret.files.length > 0)
      ? { secret: service.secret }
      : {}),
    ...(service.resources ? { resources: service.resources } : {}),
    ...(service.network === 'host' ? { network: 'host' as const } : {}),
    ...(service.userns === 'host' ? { userns: 'host' as const } : {}),
  }
}

/**
 * Content address of a bundle: canonical JSON, so the same env and files always give the same digest and
 * an unchanged config never makes a new release.
 */
export function configDigest(bundle: ConfigBundle): Digest {
  // hashed here rather than with oci/digest's sha256: that module also reads files, and plan/ does no I/O
  return `sha256:${createHash('sha256').update(canonicalJson(bundle)).digest('hex')}`
}
