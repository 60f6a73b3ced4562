import { GrailError } from '../../errors.js'
import type { Project, RegistrySpec } from '../../spec/types.js'
import type { Registry } from './connect.js'
import { isFatalCacheError } from './cache.js'
import { connectRegistry } from './connect.js'

/**
 * What `--cache-from`/`--cache-to` say: `registry` (the project's `registry:`), a registry URL
 * (`http[s]://host[:port][/prefix]`), off (`--no-cache-…`), or unsaid (undefined: the spec's
 * `registry.cache.from`/`to` decide).
 */
export type CacheSource = string | boolean | undefined

/**
 * The registry a URL names: the project's own settings (auth, CA, insecure) when it is the project's
 * host, else anonymous; the URL's path is the repository prefix (default the project's prefix, or name).
 */
export function registryFromUrl(value: string, project: Pick<Project, 'name' | 'registry'>): RegistrySpec {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    url = new URL('invalid:')
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search) {
    throw new GrailError(
      'REGISTRY_REF_INVALID',
      `--cache-from/--cache-to ${value}: not "registry" nor a registry URL`,
      {
        hint: 'use `registry` (the `registry:` of grail.yaml) or http[s]://host[:port][/prefix]; credentials go in `registry.auth`, never in the URL',
      },
    )
  }
  const host = url.host.toLowerCase()
  const own = project.registry?.host === host ? project.registry : undefined
  const prefix = url.pathname.replace(/^\/+|\/+$/g, '') || own?.prefix || project.name
  return {
    url: `${url.protocol}//${host}`,
    host,
    prefix,
    auth: own?.auth ?? { kind: 'auto' },
    ...(own?.ca !== undefined ? { ca: own.ca } : {}),
    insecure: own?.insecure ?? false,
    cache: { from: true, to: true },
  }
}

function specFor(
  project: Pick<Project, 'name' | 'registry' | 'file'>,
  source: CacheSource,
  which: 'from' | 'to',
): RegistrySpec | undefined {
  if (source === false) return undefined
  if (source === undefined) return project.registry?.cache[which] ? project.registry : undefined
  if (source === true || source === 'registry') {
    if (!project.registry)
      throw new GrailError(
        'REGISTRY_NOT_CONFIGURED',
        `--cache-${which} registry: ${project.file} declares no \`registry:\``,
        {
          hint:
            'add `registry: {url: …}` to grail.yaml, or give a registry URL: --cache-' +
            which +
            ' http[s]://host[:port][/prefix]',
        },
      )
    return project.registry
  }
  return registryFromUrl(source, project)
}

export interface BuildCacheRegistries {
  from?: Registry
  to?: Registry
}

/** Connects to the registries the build reads its shared cache from and writes it to (one when the same). */
export async function buildCacheRegistries(
  project: Pick<Project, 'name' | 'registry' | 'file'>,
  flags: { from?: CacheSource; to?: CacheSource },
): Promise<BuildCacheRegistries> {
  const from = specFor(project, flags.from, 'from')
  const to = specFor(project, flags.to, 'to')
  const same = from && to && from.url === to.url && from.prefix === to.prefix
  const fromReg = from ? await connectRegistry(from) : undefined
  const toReg = same ? fromReg : to ? await connectRegistry(to) : undefined
  // refused credentials are the user's to fix before a long build, not after it; a registry that does
  // not answer is not (the cache warns when it is used, and the build goes on)
  for (const reg of new Set([fromReg, toReg])) {
    await reg?.client.ping().catch((err: unknown) => {
      if (isFatalCacheError(err)) throw err
    })
  }
  return { ...(fromReg ? { from: fromReg } : {}), ...(toReg ? { to: toReg } : {}) }
}
