import type { Digest } from '../../oci/digest.js'
import type { GrailHome } from '../../home.js'
import type { OciStore } from '../../oci/store.js'
import type { Project } from '../../spec/types.js'
import type { Db } from '../../state/index.js'
import { listImages } from '../../state/index.js'
import type { Lock } from '../lock-file.js'
import { connectRegistry, type Registry, registrySpecOf } from './connect.js'
import { type PulledImage, pullIntoCatalog } from './pull.js'

/**
 * What `apply --locked` needs and this machine lacks: each image the lock names for the environment's
 * services whose digest the catalog does not have (or has without its blobs) is pulled by digest from the
 * environment's registry. Without a registry nothing is pulled, and the lock check says what is missing.
 * Returns what was pulled.
 */
export async function pullLockedImages(
  a: { project: Project; environment: string; home: GrailHome; store: OciStore; db: Db },
  lock: Lock | undefined,
  names: readonly string[],
): Promise<PulledImage[]> {
  const spec = registrySpecOf(a.project, a.environment)
  if (!lock || !spec) return []
  const missing: Array<{ name: string; digest: Digest }> = []
  for (const name of names) {
    const entry = lock.images[name]
    if (!entry) continue
    const have =
      listImages(a.db, name).some((i) => i.digest === entry.digest) && a.store.hasBlob(entry.digest as Digest)
    if (!have) missing.push({ name, digest: entry.digest as Digest })
  }
  if (missing.length === 0) return []
  const registry: Registry = await connectRegistry(spec)
  const pulled: PulledImage[] = []
  for (const m of missing) {
    pulled.push(
      await pullIntoCatalog(
        registry,
        { registry: spec.host, repository: registry.repository(m.name), digest: m.digest },
        a,
        { as: m.name },
      ),
    )
  }
  return pulled
}
