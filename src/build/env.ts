import type { GrailHome } from '../home.js'
import type { Digest } from '../oci/digest.js'
import type { OciStore } from '../oci/store.js'
import type { ImageConfig } from '../oci/types.js'
import type { Resources } from '../spec/types.js'
import type { Db, ImageRecord, PackageInfo } from '../state/index.js'
import type { RegistryBases } from './registry-base.js'
import type { RemoteCache } from './remote-cache.js'
import type { StepVariation } from './variation.js'

/** Everything a build step needs from its surroundings. */
export interface BuildEnv {
  home: GrailHome
  store: OciStore
  db: Db
  /** mtime clamp for layers, seconds */
  epoch: number
  /** reuse nothing: every step runs (used by `--verify`) */
  noCache: boolean
  /** `build --refresh`: every step runs again (Debian packages re-resolved), and the caches take the result */
  refresh?: boolean
  log: (line: string) => void
  /** the project's name: images carry it (and their own name) as labels, so a pull can tell what it got */
  project?: string
  /**
   * package → version: pins (`pkg=VERSION`) in a Debian base's `include` installed at this version
   * instead (a `policies.patch` build, with `refresh`); the spec and the cache keys stay as they are
   */
  upgrades?: Readonly<Record<string, string>>
  /**
   * The version each image of the spec builds now, as far as known (the images built before this one in
   * the same run): an unpinned `base: {image}` builds on that version, not on the newest one, so a
   * reverted parent gives its children the reverted parent.
   */
  current?: ReadonlyMap<string, ImageRecord>
  /** resolve an unpinned parent to its current version even when revoked (to find what was built on it) */
  revokedParent?: boolean
  /** limits of each `run` step of the image being built */
  resources?: Resources
  /** what `run` steps see of their surroundings (the second build of `--verify` varies it) */
  variation?: StepVariation
  /**
   * the digests and clients of `base: {registry}` (see registryBases): the ref's digest, else the lock's
   * pin, else the tag resolved once; without it such a base cannot be planned
   */
  registry?: RegistryBases
  /** a shared cache (`build --cache-from`) asked for the keys the local cache does not have */
  remoteCache?: RemoteCache
}

export interface LayerDesc {
  mediaType: string
  digest: Digest
  diffId: Digest
  size: number
}

/** The image being built, as it stands after the steps so far. */
export interface ImageState {
  key: string
  layers: LayerDesc[]
  config: ImageConfig
  packages: PackageInfo[]
  parentDigest: Digest | null
}

/** OCI architecture name of this machine. */
export function hostArchitecture(): string {
  const map: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ppc64: 'ppc64le',
    s390x: 's390x',
  }
  return map[process.arch] ?? process.arch
}

export function emptyConfig(architecture = hostArchitecture()): ImageConfig {
  return { architecture, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] }
}
