/**
 * SHIM (branch reg-cache only): stands in for the lead's `src/lifecycle/registry/connect.ts`
 * (`connectRegistry`, `Registry`) and `push.ts` (`pushImages`) until they land, with the same shapes, so
 * swapping is an import change in cache.ts, build-cache.ts, registry-gc.ts and cli/commands/{build,
 * lifecycle}.ts (then this file goes). It wires reg-client's createRegistryClient and pushImage.
 */
import type { Digest } from '../../oci/digest.js'
import { createRegistryClient, pushImage, redactable, resolveCredentials } from '../../oci/registry/index.js'
import type { RegistryClient, TransferEvent } from '../../oci/registry/types.js'
import type { OciStore } from '../../oci/store.js'
import type { RegistrySpec } from '../../spec/types.js'
import type { Db, ImageRecord } from '../../state/index.js'
import { appendEvent } from '../../state/index.js'

export interface Registry {
  spec: RegistrySpec
  client: RegistryClient
  /** `${prefix}/${image}` */
  repository(image: string): string
  /** `host/prefix/image` */
  reference(image: string): string
  secrets: string[]
}

/** SHIM of the lead's connectRegistry. */
export async function connectRegistry(spec: RegistrySpec): Promise<Registry> {
  const credentials = await resolveCredentials(spec.host, spec.auth)
  return {
    spec,
    client: createRegistryClient({
      url: spec.url,
      credentials,
      ...(spec.ca !== undefined ? { caFile: spec.ca } : {}),
      insecure: spec.insecure,
    }),
    repository: (image) => `${spec.prefix}/${image}`,
    reference: (image) => `${spec.host}/${spec.prefix}/${image}`,
    secrets: redactable(credentials),
  }
}

export interface PushedImage {
  name: string
  version: number
  digest: Digest
  /** `host/prefix/name@sha256:…` */
  reference: string
  tags: string[]
  uploaded: number
  skipped: number
}

/** SHIM of the lead's pushImages (main's push.ts has this shape): each version tagged `v<version>`. */
export async function pushImages(
  registry: Registry,
  store: OciStore,
  db: Db,
  images: readonly ImageRecord[],
  opts: { onEvent?: (image: ImageRecord, e: TransferEvent) => void; concurrency?: number } = {},
): Promise<PushedImage[]> {
  const out: PushedImage[] = []
  for (const rec of images) {
    const repository = registry.repository(rec.name)
    const tags = [`v${rec.version}`]
    const r = await pushImage(registry.client, store, repository, rec.digest, {
      tags,
      ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
      ...(opts.onEvent ? { onEvent: (e: TransferEvent) => opts.onEvent?.(rec, e) } : {}),
    })
    appendEvent(db, 'image.pushed', `${rec.name}@${rec.version}`, {
      digest: rec.digest,
      registry: registry.spec.host,
      repository,
      tags,
      uploaded: r.uploaded,
      skipped: r.skipped,
    })
    out.push({
      name: rec.name,
      version: rec.version,
      digest: rec.digest,
      reference: `${registry.reference(rec.name)}@${rec.digest}`,
      tags,
      uploaded: r.uploaded,
      skipped: r.skipped,
    })
  }
  return out
}
