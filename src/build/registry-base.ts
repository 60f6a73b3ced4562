/**
 * `base: {registry: host/repo:tag}`: which manifest digest a build starts from, and a client to pull it
 * with. The digest comes from the ref's own `@sha256:…`, else grail.lock's pin for the image, else the
 * registry (the tag resolved once per run, an index to the manifest of this machine's platform); only
 * the last needs the network, so a build or a plan with a pinned base never asks the registry for a key.
 */
import { GrailError } from '../errors.js'
import type { Digest } from '../oci/digest.js'
import { isDigest } from '../oci/digest.js'
import { DOCKER_MANIFEST, MEDIA_INDEX, MEDIA_MANIFEST } from '../oci/media-types.js'
import type { RegistryClient, RegistryRef } from '../oci/registry/types.js'
import type { ImageIndex } from '../oci/types.js'
import type { Lock, LockedBase } from '../lifecycle/lock-file.js'
import type { Project } from '../spec/types.js'
import { hostArchitecture } from './env.js'

const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
const INDEX_TYPES = new Set([MEDIA_INDEX, DOCKER_MANIFEST_LIST])
const MANIFEST_TYPES = new Set([MEDIA_MANIFEST, DOCKER_MANIFEST])

/** What a build asks about its registry bases (BuildEnv.registry). */
export interface RegistryBases {
  /** the manifest digest `image`'s base `ref` builds on (see the module comment for the order) */
  digestOf(image: string, ref: string): Promise<Digest>
  /** what `digestOf` answered for `image` in this run: grail.lock's new pin */
  pinOf(image: string): LockedBase | undefined
  /** a client for `host` (the project's registry settings when it is that host), one per host and run */
  client(host: string): Promise<RegistryClient>
  /** the platform an index is resolved to */
  platform: { os: string; architecture: string }
  /** closes the clients */
  close(): Promise<void>
}

export interface RegistryBasesOptions {
  project: Project
  /** the project's grail.lock, if any: its `base` pins */
  lock: Lock | undefined
  /** `build --refresh`: tags are resolved again, whatever the lock pins */
  refresh?: boolean
  /** how a client is made (default: connectRegistry with registrySpecForHost) */
  connect?: (host: string) => Promise<Closable>
}

/** The reference's parts (the spec has checked its grammar; the client's parser checks it again). */
export async function parseBaseRef(ref: string): Promise<RegistryRef> {
  const { parseReference } = await import('../oci/registry/reference.js')
  return parseReference(ref)
}

/** The manifest of an index that `pullImage` takes for `platform`: same rule, so the pin is what is pulled. */
export function platformManifest(
  index: ImageIndex,
  platform: { os: string; architecture: string },
  what: string,
): Digest {
  const pick = (index.manifests ?? []).find(
    (d) =>
      d.platform?.os === platform.os &&
      d.platform?.architecture === platform.architecture &&
      MANIFEST_TYPES.has(d.mediaType),
  )
  if (!pick || !isDigest(pick.digest)) {
    const have =
      (index.manifests ?? [])
        .map((d) => (d.platform ? `${d.platform.os}/${d.platform.architecture}` : 'unknown'))
        .join(', ') || 'none'
    throw new GrailError(
      'REGISTRY_NOT_FOUND',
      `${what} has no ${platform.os}/${platform.architecture} image (it has: ${have})`,
      {
        hint: 'base the image on a reference that has this platform, or pin one of its manifests with @sha256:…',
      },
    )
  }
  return pick.digest
}

/**
 * Resolves `ref`'s tag in the registry to a manifest digest: HEAD for the digest and media type, and for
 * an index (or a Docker manifest list) the manifest of `platform`.
 */
export async function resolveTag(
  client: RegistryClient,
  ref: RegistryRef,
  platform: { os: string; architecture: string },
  forImage: string,
): Promise<Digest> {
  const tag = ref.tag ?? 'latest'
  const what = `base ${ref.registry}/${ref.repository}:${tag} of image ${forImage}`
  const head = await client.headManifest(ref.repository, tag)
  if (head === undefined) {
    throw new GrailError('REGISTRY_NOT_FOUND', `${what} is not in registry ${ref.registry}`, {
      hint: `check the reference in images.${forImage}.base.registry, or push the image there first`,
    })
  }
  if (MANIFEST_TYPES.has(head.mediaType)) return head.digest
  if (!INDEX_TYPES.has(head.mediaType)) {
    throw new GrailError('REGISTRY_ERROR', `${what} is a ${head.mediaType}, not an image`, {
      hint: `a base is an image manifest (${MEDIA_MANIFEST} or ${DOCKER_MANIFEST}) or an index of them`,
    })
  }
  const index = await client.getManifest(ref.repository, head.digest)
  return platformManifest(JSON.parse(index.bytes.toString('utf8')) as ImageIndex, platform, what)
}

type Closable = RegistryClient & { close?(): Promise<void> }

async function defaultConnect(project: Project, host: string): Promise<Closable> {
  const { connectRegistry, registrySpecForHost } = await import('../lifecycle/registry/connect.js')
  // the client createRegistryClient made, whose close() the Registry type does not name
  return (await connectRegistry(registrySpecForHost(project, host))).client as Closable
}

/** The registry bases of one run (one build, one plan). */
export function registryBases(opts: RegistryBasesOptions): RegistryBases {
  const platform = { os: 'linux', architecture: hostArchitecture() }
  const clients = new Map<string, Promise<Closable>>()
  const resolved = new Map<string, Promise<Digest>>()
  const pins = new Map<string, LockedBase>()
  const client = (host: string) => {
    let c = clients.get(host)
    if (!c) {
      c = opts.connect ? opts.connect(host) : defaultConnect(opts.project, host)
      clients.set(host, c)
    }
    return c
  }
  const fromRegistry = (image: string, ref: string): Promise<Digest> => {
    // once per ref and run: every image on the same tag builds on the same manifest
    let d = resolved.get(ref)
    if (!d) {
      d = (async () => {
        const parsed = await parseBaseRef(ref)
        return resolveTag(await client(parsed.registry), parsed, platform, image)
      })()
      resolved.set(ref, d)
    }
    return d
  }
  return {
    platform,
    async digestOf(image, ref) {
      const at = ref.indexOf('@')
      let digest: Digest
      if (at >= 0) digest = ref.slice(at + 1) as Digest
      else {
        const pinned = opts.refresh ? undefined : opts.lock?.images[image]?.base
        digest =
          pinned !== undefined && pinned.ref === ref && isDigest(pinned.digest)
            ? pinned.digest
            : await fromRegistry(image, ref)
      }
      pins.set(image, { ref, digest })
      return digest
    },
    pinOf: (image) => pins.get(image),
    client: (host) => client(host),
    async close() {
      for (const c of clients.values()) {
        const made = await c.catch(() => undefined)
        await made?.close?.()
      }
    },
  }
}
