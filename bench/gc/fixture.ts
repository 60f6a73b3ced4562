// The history bench/gc collects: NAMES images × VERSIONS versions that share a pool of base layers, IN_USE
// of them deployed. Written once as a Grail home (catalog rows, releases, an OCI store) and, from the very
// same blobs, as a registry's filesystem storage (registry.ts), so both tools face identical bytes.
import { createHash } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import tar from 'tar-stream'
import { type GrailHome, homeAt } from '../../src/home.js'
import { canonicalJson } from '../../src/oci/canonical-json.js'
import { type Digest, sha256 } from '../../src/oci/digest.js'
import { MEDIA_CONFIG, MEDIA_LAYER_GZIP, MEDIA_MANIFEST } from '../../src/oci/media-types.js'
import { openStore } from '../../src/oci/store.js'
import type { Descriptor, ImageConfig, Manifest } from '../../src/oci/types.js'
import { insertImage, insertRelease, openDb, setReleaseStatus } from '../../src/state/index.js'

export const NAMES = 10
export const VERSIONS = 100
export const BASE_LAYERS = 30
export const BASE_LAYERS_PER_VERSION = 3
/** A name moves to the next base generation (other base layers) every this many versions. */
export const VERSIONS_PER_BASE = 10
export const BASE_LAYER_BYTES = 256 * 1024
export const UNIQUE_LAYER_BYTES = 4 * 1024
export const IN_USE = 20
export const PROJECT = 'gcbench'
export const ENVIRONMENT = 'local'

/** The spec the bench's `grail gc` runs with: keep the newest version of each name and each service's release. */
export const SPEC = `project: ${PROJECT}
policies:
  gc: { keepVersions: 1, keepReleases: 1, keepDeployedWithin: 0s }
`

export interface Version {
  name: string
  version: number
  manifest: Descriptor
  config: Descriptor
  /** base layers first, then the version's own layer */
  layers: Descriptor[]
  /** the service deploying it, for the IN_USE versions */
  service?: string
  /** the newest version of its name */
  newest: boolean
}

export interface History {
  versions: Version[]
  /** blob digest → size, every blob of the store */
  blobs: Map<string, number>
  /** blobs a kept version references: what gc must leave */
  liveBlobs: Set<string>
  /** `name@version` of each version that must be collected */
  collected: Set<string>
  /** the blobs no kept version references, and their total size: what gc must free */
  freed: { digests: Set<string>; bytes: number }
}

export const imageName = (n: number) => `img-${String(n).padStart(2, '0')}`

/**
 * The base layers (pool indices) of version `v` of any name: the base is rebuilt every VERSIONS_PER_BASE
 * versions, and every name of that generation builds on the same BASE_LAYERS_PER_VERSION layers. Old
 * generations end up referenced by collected versions only, so gc frees some shared layers too.
 */
export function baseLayersOf(v: number): number[] {
  const generation = Math.floor((v - 1) / VERSIONS_PER_BASE)
  return Array.from(
    { length: BASE_LAYERS_PER_VERSION },
    (_, j) => (generation * BASE_LAYERS_PER_VERSION + j) % BASE_LAYERS,
  )
}

/** The two deployed versions of name `n`: neither is the newest, so only the release keeps them. */
export function inUseVersions(n: number): number[] {
  return [20 + n, 60 + n]
}

/** `bytes` of deterministic, incompressible content: SHA-256 in counter mode over `seed`. */
function noise(seed: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes)
  for (let off = 0, i = 0; off < bytes; off += 32, i++)
    createHash('sha256').update(`${seed}/${i}`).digest().copy(out, off)
  return out
}

/** A gzipped tar holding one file, byte-for-byte the same on every run (mtime 0, root owner). */
async function layerOf(path: string, content: Buffer): Promise<{ gz: Buffer; diffId: Digest }> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer)
    })
    pack.on('end', resolve)
    pack.on('error', reject)
  })
  pack.entry({ name: path, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) }, content)
  pack.finalize()
  await done
  const tarBytes = Buffer.concat(chunks)
  return { gz: gzipSync(tarBytes), diffId: sha256(tarBytes) }
}

/**
 * Writes the history into a new Grail project at `projectDir` (grail.yaml; .grail/ with state.db and oci/):
 * every version's layers, config and manifest through the store, its catalog row with insertImage, and
 * one active release per deployed version (service `svc-NN`, environment `local`). Returns what was
 * written and what gc must do.
 */
export async function writeGrailHome(projectDir: string): Promise<History & { home: GrailHome }> {
  const home = homeAt(join(projectDir, '.grail'))
  const store = await openStore(home.oci, home.tmp)
  const db = openDb(home.db)
  try {
    const blobs = new Map<string, number>()
    const track = (d: Descriptor): Descriptor => {
      blobs.set(d.digest, d.size)
      return d
    }
    const base: Array<{ layer: Descriptor; diffId: Digest }> = []
    for (let i = 0; i < BASE_LAYERS; i++) {
      const { gz, diffId } = await layerOf(`base/${i}.bin`, noise(`base-${i}`, BASE_LAYER_BYTES))
      const { digest, size } = await store.putBytes(gz)
      base.push({ layer: track({ mediaType: MEDIA_LAYER_GZIP, digest, size }), diffId })
    }
    const deployed = new Map<string, string>()
    for (let n = 0, s = 0; n < NAMES; n++)
      for (const v of inUseVersions(n))
        deployed.set(`${imageName(n)}@${v}`, `svc-${String(s++).padStart(2, '0')}`)

    const versions: Version[] = []
    const start = Date.now() - NAMES * VERSIONS * 60_000
    for (let n = 0; n < NAMES; n++) {
      const name = imageName(n)
      for (let v = 1; v <= VERSIONS; v++) {
        const own = await layerOf(`app/${name}-${v}.bin`, noise(`${name}-${v}`, UNIQUE_LAYER_BYTES))
        const ownBlob = await store.putBytes(own.gz)
        const shared = baseLayersOf(v).map((i) => base[i] as (typeof base)[number])
        const layers = [
          ...shared.map((b) => b.layer),
          track({ mediaType: MEDIA_LAYER_GZIP, digest: ownBlob.digest, size: ownBlob.size }),
        ]
        const image: ImageConfig = {
          created: '1970-01-01T00:00:00Z',
          architecture: 'amd64',
          os: 'linux',
          config: { Env: [`VERSION=${v}`], Cmd: [`/app/${name}-${v}.bin`] },
          rootfs: { type: 'layers', diff_ids: [...shared.map((b) => b.diffId), own.diffId] },
        }
        const config = track(await store.putJson(MEDIA_CONFIG, image))
        const body: Manifest = { schemaVersion: 2, mediaType: MEDIA_MANIFEST, config, layers }
        const manifest = track(await store.putJson(MEDIA_MANIFEST, body))
        const k = n * VERSIONS + v
        const rec = insertImage(db, {
          name,
          digest: manifest.digest,
          configDigest: config.digest,
          buildKey: `gcbench-${name}-${v}`,
          parentDigest: null,
          base: { kind: 'scratch' },
          gitCommit: null,
          createdAt: new Date(start + k * 60_000).toISOString(),
          size: manifest.size + config.size + layers.reduce((t, l) => t + l.size, 0),
          packages: [],
        })
        if (rec.version !== v) throw new Error(`${name}: catalog gave version ${rec.version}, expected ${v}`)
        const service = deployed.get(`${name}@${v}`)
        versions.push({
          name,
          version: v,
          manifest,
          config,
          layers,
          newest: v === VERSIONS,
          ...(service ? { service } : {}),
        })
      }
    }
    const releaseConfig = {}
    for (const ver of versions) {
      if (!ver.service) continue
      const rel = insertRelease(db, {
        service: ver.service,
        environment: ENVIRONMENT,
        imageName: ver.name,
        imageVersion: ver.version,
        imageDigest: ver.manifest.digest,
        configDigest: sha256(canonicalJson(releaseConfig)),
        config: releaseConfig,
      })
      setReleaseStatus(db, ver.service, rel.number, 'active')
    }
    if (deployed.size !== IN_USE) throw new Error(`${deployed.size} versions deployed, expected ${IN_USE}`)
    await writeFile(join(projectDir, 'grail.yaml'), SPEC)
    return { home, ...expectedOutcome(versions, blobs) }
  } finally {
    db.close()
  }
}

/** What a correct gc leaves: every blob of a deployed or newest version; the rest of the versions go. */
export function expectedOutcome(versions: readonly Version[], blobs: Map<string, number>): History {
  const liveBlobs = new Set<string>()
  const collected = new Set<string>()
  for (const v of versions) {
    if (v.service !== undefined || v.newest)
      for (const d of [v.manifest, v.config, ...v.layers]) liveBlobs.add(d.digest)
    else collected.add(`${v.name}@${v.version}`)
  }
  const digests = new Set([...blobs.keys()].filter((d) => !liveBlobs.has(d)))
  let bytes = 0
  for (const d of digests) bytes += blobs.get(d) as number
  return { versions: [...versions], blobs, liveBlobs, collected, freed: { digests, bytes } }
}
