/**
 * SHIM (branch reg-cache only): stands in for the lead's `src/lifecycle/registry/connect.ts`
 * (`connectRegistry`, `Registry`) and `push.ts` (`pushImages`) until they land, with the same shapes, so
 * swapping is an import change in cache.ts, build-cache.ts, registry-gc.ts and cli/commands/{build,
 * lifecycle}.ts. It wires reg-client's createRegistryClient and pushImage, nothing more: no output
 * redaction of the secrets, no push events recorded.
 */
import type { Digest } from '../../oci/digest.js'
import { createRegistryClient, pushImage, redactable, resolveCredentials } from '../../oci/registry/index.js'
import type { RegistryClient, TransferEvent } from '../../oci/registry/types.js'
import type { OciStore } from '../../oci/store.js'
import type { RegistrySpec } from '../../spec/types.js'
import type { Db, ImageRecord } from '../../state/index.js'

export interface Registry {
  spec: RegistrySpec
  client: RegistryClient
  /** `${prefix}/${image}` */
  repository(image: string): string
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
    secrets: redactable(credentials),
  }
}

/** SHIM of the lead's pushImages: each image with its manifest tagged `v<version>`. */
export async function pushImages(
  registry: Registry,
  store: OciStore,
  _db: Db,
  images: readonly ImageRecord[],
  opts: { onEvent?: (e: TransferEvent) => void } = {},
): Promise<Array<{ name: string; version: number; digest: Digest; reference: string }>> {
  const out: Array<{ name: string; version: number; digest: Digest; reference: string }> = []
  for (const rec of images) {
    const repo = registry.repository(rec.name)
    await pushImage(registry.client, store, repo, rec.digest, {
      tags: [`v${rec.version}`],
      ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    })
    out.push({
      name: rec.name,
      version: rec.version,
      digest: rec.digest,
      reference: `${registry.client.registry}/${repo}:v${rec.version}`,
    })
  }
  return out
}
