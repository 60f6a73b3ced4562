import { posix } from 'node:path'
import type { PackEntry } from '../oci/tar/index.js'
import type { CopyEntry } from './copy-step.js'
import type { BuildEnv, ImageState, LayerDesc } from './env.js'
import { layerFromEntries } from './layers.js'
import { ensureLowers, lookupInLowers } from '../container/snapshots.js'

/**
 * Turns a copy step's files into a layer. Directories on the way to the destination are added only when
 * the image does not have them yet, so an existing directory (say /tmp, mode 1777) keeps its mode.
 */
export async function buildCopyLayer(
  env: BuildEnv,
  state: ImageState,
  files: CopyEntry[],
): Promise<LayerDesc> {
  const present = new Set(files.map((f) => f.path))
  const parents = new Set<string>()
  for (const f of files) {
    for (let dir = posix.dirname(f.path); dir !== '.' && dir !== '/'; dir = posix.dirname(dir)) {
      if (!present.has(dir)) parents.add(dir)
    }
  }
  const entries: PackEntry[] = files.map(({ sha256: _hash, ...e }) => ({ ...e, mtime: env.epoch }))
  if (parents.size > 0) {
    // looked up only (does a parent dir exist?): not worth hashing the base's snapshots for
    const lowers = await ensureLowers(env.home, env.store, state.layers, { verify: false })
    for (const dir of parents) {
      if (!(await lookupInLowers(lowers, dir))) {
        entries.push({ path: dir, type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: env.epoch })
      }
    }
  }
  return layerFromEntries(env, entries)
}
