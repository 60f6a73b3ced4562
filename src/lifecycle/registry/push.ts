import type { Digest } from '../../oci/digest.js'
import type { OciStore } from '../../oci/store.js'
import type { TransferEvent } from '../../oci/registry/types.js'
import type { Db, ImageRecord } from '../../state/index.js'
import { appendEvent } from '../../state/index.js'
import type { Registry } from './connect.js'

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

/**
 * Pushes image versions to the registry: each one's blobs (what the registry has is skipped, a layer
 * another pushed image of the project has is mounted), then its manifest by digest, then its tag `vN`
 * (this machine's version number; the digest is the identity). Records `image.pushed` per version.
 */
export async function pushImages(
  registry: Registry,
  store: OciStore,
  db: Db,
  images: readonly ImageRecord[],
  opts: { onEvent?: (image: ImageRecord, e: TransferEvent) => void; concurrency?: number } = {},
): Promise<PushedImage[]> {
  const { pushImage } = await import('../../oci/registry/index.js')
  const out: PushedImage[] = []
  const done = new Set<string>()
  for (const rec of images) {
    const repository = registry.repository(rec.name)
    const tags = [`v${rec.version}`]
    // layers shared with an image pushed before (a parent, a sibling) are mounted, not uploaded again
    const mountFrom = [...done].filter((r) => r !== repository)
    const r = await pushImage(registry.client, store, repository, rec.digest, {
      tags,
      mountFrom,
      ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
      ...(opts.onEvent ? { onEvent: (e: TransferEvent) => opts.onEvent?.(rec, e) } : {}),
    })
    done.add(repository)
    const reference = `${registry.reference(rec.name)}@${rec.digest}`
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
      reference,
      tags,
      uploaded: r.uploaded,
      skipped: r.skipped,
    })
  }
  return out
}
