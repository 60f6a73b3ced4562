import { IMAGE_NAME_LABEL, IMAGE_PROJECT_LABEL } from '../../build/builder.js'
import { GrailError } from '../../errors.js'
import type { GrailHome } from '../../home.js'
import type { Digest } from '../../oci/digest.js'
import type { RegistryRef, TransferEvent } from '../../oci/registry/types.js'
import type { OciStore } from '../../oci/store.js'
import type { ImageConfig } from '../../oci/types.js'
import { NAME_PATTERN } from '../../spec/schema-common.js'
import type { Db, ImageRecord } from '../../state/index.js'
import { appendEvent, listImages, recordImageVersion } from '../../state/index.js'
import type { Registry } from './connect.js'

export interface PulledImage {
  record: ImageRecord
  /** false when the catalog had this digest under this name already (nothing was recorded) */
  created: boolean
  /** what the image's labels say of where it came from, when it was built by Grail */
  provenance?: { image: string; project?: string }
  /** `host/repo@sha256:…` */
  reference: string
}

/**
 * Pulls an image into the store and records it in the catalog: every blob is verified against its digest
 * while it streams, and the manifest is stored last, so an interrupted pull leaves nothing that looks
 * whole. The catalog name is `as`, else the image's `dev.grail.image.name` label, else the repository's
 * last component; a digest the catalog has under that name keeps its version.
 */
export async function pullIntoCatalog(
  registry: Pick<Registry, 'client'>,
  ref: RegistryRef,
  a: { home: GrailHome; store: OciStore; db: Db },
  opts: { as?: string; onEvent?: (e: TransferEvent) => void } = {},
): Promise<PulledImage> {
  const { pullImage } = await import('../../oci/registry/index.js')
  const reference = ref.digest ?? ref.tag ?? 'latest'
  const pulled = await pullImage(registry.client, ref.repository, reference, a.store, {
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
  })
  const source = `${ref.registry}/${ref.repository}@${pulled.digest}`
  // a digest names the manifest itself, or the index it was picked from
  if (ref.digest !== undefined && pulled.digest !== ref.digest && pulled.indexDigest !== ref.digest) {
    throw new GrailError('DIGEST_MISMATCH', `${source} is not the requested ${ref.digest}`, {
      hint: 'the registry served another manifest than the one asked for; check the registry',
    })
  }
  const config = await a.store.readJson<ImageConfig>(pulled.configDigest)
  const labels = config.config?.Labels ?? {}
  const labelled = labels[IMAGE_NAME_LABEL]
  const name = opts.as ?? (labelled && NAME_PATTERN.test(labelled) ? labelled : lastComponent(ref.repository))
  if (!NAME_PATTERN.test(name)) {
    throw new GrailError('BAD_NAME', `"${name}" (from ${source}) is not a valid image name`, {
      hint: 'name it with --as NAME (lowercase letters, digits and "-", at most 63 characters)',
    })
  }
  const provenance =
    labelled !== undefined
      ? {
          image: labelled,
          ...(labels[IMAGE_PROJECT_LABEL] !== undefined ? { project: labels[IMAGE_PROJECT_LABEL] } : {}),
        }
      : undefined
  const existing = listImages(a.db, name).find((i) => i.digest === pulled.digest)
  if (existing)
    return { record: existing, created: false, reference: source, ...(provenance ? { provenance } : {}) }

  const size =
    pulled.manifest.config.size +
    pulled.manifest.layers.reduce((n: number, l: { size: number }) => n + l.size, 0) +
    (await manifestSize(a.store, pulled.digest))
  // the file manifest drift compares with is made from the layers on first use, not here
  const { syncIndex } = await import('../../build/image-writer.js')
  const { record, created } = recordImageVersion(a.db, {
    name,
    digest: pulled.digest,
    configDigest: pulled.configDigest,
    // never a build's key: a build of this name finds its own version by its own key
    buildKey: `pull:${pulled.digest}`,
    parentDigest: null,
    base: { kind: 'registry', ref: source },
    gitCommit: null,
    createdAt: new Date().toISOString(),
    size,
    packages: [],
  })
  if (created) {
    appendEvent(a.db, 'image.pulled', `${record.name}@${record.version}`, {
      digest: record.digest,
      from: source,
      ...(provenance ? { provenance } : {}),
    })
    await syncIndex(a.db, a.store)
  }
  return { record, created, reference: source, ...(provenance ? { provenance } : {}) }
}

const lastComponent = (repository: string): string => repository.split('/').at(-1) as string

async function manifestSize(store: OciStore, digest: Digest): Promise<number> {
  const { blobSize } = await import('../../oci/store.js')
  return blobSize(store, digest)
}
