import { GrailError } from '../../errors.js'
import type { Digest } from '../../oci/digest.js'
import { appendEvent } from '../../state/index.js'
import { mapLimit } from '../../util/pool.js'
import { type GcEnv, gcInput } from '../gc.js'
import { planGc, planRegistrySweep, type RegistryCandidate } from '../gc-plan.js'
import { CACHE_TAG } from './cache.js'
import type { Registry } from './connect.js'

export interface RegistrySweepReport {
  dryRun: boolean
  /** `host[:port]` */
  registry: string
  /** manifests deleted (a dry run: that would be), each with the tags that pointed at it */
  deleted: Array<{ image: string; version: number; repository: string; digest: string; tags: string[] }>
  /** versions gc collects whose digest something still needs: their manifests stay */
  spared: Array<{ image: string; version: number; digest: string; why: string }>
  /** collected versions the registry does not have (never pushed, or deleted already) */
  absent: number
}

/** Every tag of a repository with the digest it points at; none when the repository does not exist. */
async function tagsOf(registry: Registry, repository: string): Promise<Map<string, string[]>> {
  let tags: string[]
  try {
    tags = await registry.client.listTags(repository)
  } catch (err) {
    if (err instanceof GrailError && err.code === 'REGISTRY_NOT_FOUND') return new Map()
    throw err
  }
  const byDigest = new Map<string, string[]>()
  const heads = await mapLimit(tags, 8, async (tag) => ({
    tag,
    head: await registry.client.headManifest(repository, tag),
  }))
  for (const { tag, head } of heads) {
    if (!head) continue
    byDigest.set(head.digest, [...(byDigest.get(head.digest) ?? []), tag])
  }
  return byDigest
}

/**
 * `grail gc --registry`: deletes from the registry the manifests of the image versions gc collects (now
 * or before: the catalog's tombstones), matched by digest in `<prefix>/<image>`; never one whose digest
 * a root or a kept version has (see planRegistrySweep), never one the catalog has no record of, never the
 * build cache's (`:grail-cache`). Run after the local gc, under the same apply lock. The blobs stay
 * until the registry's own garbage-collect (docs/lifecycle.md).
 */
export async function sweepRegistry(
  env: GcEnv,
  registry: Registry,
  opts: { dryRun: boolean; now?: number },
): Promise<RegistrySweepReport> {
  const now = opts.now ?? Date.now()
  const { input } = await gcInput(env, now)
  const plan = planGc(input)
  const tombstones = env.db
    .prepare('SELECT name, version, digest FROM images WHERE collected_at IS NOT NULL ORDER BY name, version')
    .all() as RegistryCandidate[]
  const { doomed, spared } = planRegistrySweep(input, plan, tombstones)
  const report: RegistrySweepReport = {
    dryRun: opts.dryRun,
    registry: registry.client.registry,
    deleted: [],
    spared: spared.map((s) => ({ image: s.name, version: s.version, digest: s.digest, why: s.why })),
    absent: 0,
  }
  const byName = new Map<string, RegistryCandidate[]>()
  for (const c of doomed) byName.set(c.name, [...(byName.get(c.name) ?? []), c])
  for (const [name, list] of byName) {
    const repository = registry.repository(name)
    const tags = await tagsOf(registry, repository)
    // the build cache's manifest is never an image's, whatever digest it has
    const cache = new Set([...tags].filter(([, t]) => t.includes(CACHE_TAG)).map(([d]) => d))
    for (const c of list) {
      if (cache.has(c.digest)) continue
      // by digest, not only through tags: a version pushed without a tag is found too
      const there =
        tags.has(c.digest) || (await registry.client.headManifest(repository, c.digest)) !== undefined
      if (!there) {
        report.absent++
        continue
      }
      const entry = {
        image: c.name,
        version: c.version,
        repository,
        digest: c.digest,
        tags: (tags.get(c.digest) ?? []).sort(),
      }
      if (!opts.dryRun) {
        try {
          await registry.client.deleteManifest(repository, c.digest as Digest)
        } catch (err) {
          if (err instanceof GrailError && err.code === 'REGISTRY_DELETE_DISABLED') {
            throw new GrailError(
              'REGISTRY_DELETE_DISABLED',
              `${registry.client.registry} does not allow deleting manifests (${repository}@${c.digest})${report.deleted.length > 0 ? `; ${report.deleted.length} were deleted before` : ''}`,
              {
                hint: 'enable deletes in the registry config: `storage: {delete: {enabled: true}}` (or REGISTRY_STORAGE_DELETE_ENABLED=true) and restart it, then run `grail gc --registry` again',
                cause: err,
              },
            )
          }
          throw err
        }
        appendEvent(env.db, 'registry.manifest-deleted', `${c.name}@${c.version}`, {
          registry: registry.client.registry,
          repository,
          digest: c.digest,
          tags: entry.tags,
        })
      }
      report.deleted.push(entry)
    }
  }
  return report
}
