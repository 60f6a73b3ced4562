import { ANNOTATION_REF_NAME, MEDIA_CONFIG, MEDIA_MANIFEST } from '../oci/media-types.js'
import type { OciStore } from '../oci/store.js'
import { blobSize } from '../oci/store.js'
import type { Descriptor, ImageConfig, Manifest } from '../oci/types.js'
import type { Db } from '../state/index.js'
import { listImages } from '../state/index.js'
import type { ImageState } from './env.js'

/**
 * Writes the image config and manifest (canonical JSON) for a finished build and returns the manifest
 * descriptor. `created` is the epoch, not the wall clock: the real build time lives in the catalog.
 */
export async function writeImage(
  store: OciStore,
  state: ImageState,
  epoch: number,
): Promise<{ manifest: Descriptor; config: Descriptor; size: number }> {
  const image: ImageConfig = {
    ...state.config,
    created: new Date(epoch * 1000).toISOString().replace('.000Z', 'Z'),
    rootfs: { type: 'layers', diff_ids: state.layers.map((l) => l.diffId) },
  }
  const config = await store.putJson(MEDIA_CONFIG, image)
  const body: Manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_MANIFEST,
    config,
    layers: state.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  }
  const manifest = await store.putJson(MEDIA_MANIFEST, body)
  const size = manifest.size + config.size + state.layers.reduce((n, l) => n + l.size, 0)
  return { manifest, config, size }
}

/** The OCI tags an image version gets: `name:vN`, plus `name:latest` for the newest active one. */
export function imageTags(name: string, version: number, latest: boolean): string[] {
  return latest ? [`${name}:v${version}`, `${name}:latest`] : [`${name}:v${version}`]
}

/**
 * Rewrites the layout's index.json from the catalog, so other tools (skopeo, umoci, docker via skopeo)
 * can address every image by tag. The catalog is the source of truth; the index is derived from it.
 */
export async function syncIndex(db: Db, store: OciStore): Promise<void> {
  const manifests: Descriptor[] = []
  const seenLatest = new Set<string>()
  for (const rec of listImages(db)) {
    if (!store.hasBlob(rec.digest)) continue
    const latest = rec.status === 'active' && !seenLatest.has(rec.name)
    if (latest) seenLatest.add(rec.name)
    const size = await blobSize(store, rec.digest)
    for (const tag of imageTags(rec.name, rec.version, latest)) {
      manifests.push({
        mediaType: MEDIA_MANIFEST,
        digest: rec.digest,
        size,
        annotations: { [ANNOTATION_REF_NAME]: tag },
      })
    }
  }
  await store.writeIndex(manifests)
}
