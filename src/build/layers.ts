import type { PackEntry } from '../oci/tar/index.js'
import { scanDir, writeLayer } from '../oci/tar/index.js'
import { MEDIA_LAYER_GZIP } from '../oci/media-types.js'
import type { BuildEnv, LayerDesc } from './env.js'

/** Writes entries as a deterministic gzip layer straight into the content store. */
export async function layerFromEntries(env: BuildEnv, entries: PackEntry[]): Promise<LayerDesc> {
  const tmp = env.store.tmpPath('layer')
  const written = await writeLayer(entries, tmp, { epoch: env.epoch })
  await env.store.adoptFile(tmp, written.digest)
  return { mediaType: MEDIA_LAYER_GZIP, digest: written.digest, diffId: written.diffId, size: written.size }
}

/** Scans a directory (optionally an overlay upper dir) into a layer. */
export async function layerFromDir(
  env: BuildEnv,
  dir: string,
  opts: { overlayUpper?: boolean; exclude?: (p: string) => boolean },
): Promise<LayerDesc> {
  const entries = await scanDir(dir, opts)
  return layerFromEntries(env, entries)
}
