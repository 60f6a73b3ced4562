import type { GrailHome } from '../../home.js'
import type { LayerRef } from '../../container/snapshots.js'
import { emptySnapshot, ensureLowers } from '../../container/snapshots.js'
import { GrailError } from '../../errors.js'
import type { Digest } from '../../oci/digest.js'
import type { OciStore } from '../../oci/store.js'
import type { ImageConfig, Manifest } from '../../oci/types.js'

/** An image as an instance needs it: its config and its unpacked layers, topmost first. */
export interface UnpackedImage {
  config: ImageConfig
  lowers: string[]
  /** the layers, bottom first (for copies with shifted owners) */
  layers: LayerRef[]
}

/**
 * Reads an image's manifest and config from the store and makes sure every layer is unpacked as a
 * snapshot (once per diff id, shared with builds and other instances). An image with no layers gets the
 * empty snapshot, because overlayfs needs at least one lower dir.
 */
export async function unpackImage(
  home: GrailHome,
  store: OciStore,
  digest: Digest,
  image?: { name: string; version: number },
  opts: { verify?: boolean } = {},
): Promise<UnpackedImage> {
  const which = image ? `image ${image.name} v${image.version} (${digest})` : `image ${digest}`
  const rebuild = image
    ? `run \`grail build ${image.name}\`: it rebuilds missing and corrupt blobs when grail.yaml still builds v${image.version}; otherwise deploy another version`
    : 'run `grail build`: it rebuilds missing and corrupt blobs of the images grail.yaml builds'
  if (!store.hasBlob(digest)) {
    throw new GrailError('IMAGE_MISSING', `${which} is not in the image store ${store.root}`, {
      hint: rebuild,
    })
  }
  try {
    const manifest = await store.readJson<Manifest>(digest)
    const config = await store.readJson<ImageConfig>(manifest.config.digest)
    const layers: LayerRef[] = manifest.layers.map((l, i) => {
      const diffId = config.rootfs.diff_ids[i]
      if (!diffId)
        throw new Error(`image ${digest} has more layers than diff ids; this is a bug in its writer`)
      return { digest: l.digest, diffId }
    })
    const lowers = await ensureLowers(home, store, layers, opts)
    if (lowers.length === 0) lowers.push(await emptySnapshot(home))
    return { config, lowers, layers }
  } catch (err) {
    // the blob is named by the store; which image it belongs to and how to get it back, here
    if (err instanceof GrailError && (err.code === 'BLOB_CORRUPT' || err.code === 'BLOB_MISSING'))
      throw new GrailError(err.code, `${which}: ${err.message}`, { hint: rebuild, cause: err })
    throw err
  }
}
