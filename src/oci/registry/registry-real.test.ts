import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { type LocalRegistry, startRegistry } from '../../../test/helpers/registry-plain.js'
import { GrailError } from '../../errors.js'
import type { Digest } from '../digest.js'
import { MEDIA_CONFIG, MEDIA_INDEX, MEDIA_LAYER_TAR, MEDIA_MANIFEST } from '../media-types.js'
import { type OciStore, openStore } from '../store.js'
import { createRegistryClient } from './client.js'
import { pullImage, pushImage } from './transfer.js'
import type { TransferEvent } from './types.js'

let reg: LocalRegistry
let tmp: string

before(async () => {
  reg = await startRegistry()
  tmp = await mkdtemp(join(tmpdir(), 'grail-reg-real-'))
})
after(async () => {
  await reg?.stop()
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

async function newStore(name: string): Promise<OciStore> {
  return openStore(join(tmp, name, 'oci'), join(tmp, name, 'tmp'))
}

/** An image written with the store: a config, `layers` random layers of the given sizes, a manifest. */
async function makeImage(store: OciStore, sizes: number[]): Promise<Digest> {
  const layers = []
  for (const n of sizes) {
    const { digest, size } = await store.putBytes(randomBytes(n))
    layers.push({ mediaType: MEDIA_LAYER_TAR, digest, size })
  }
  const config = await store.putJson(MEDIA_CONFIG, {
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
  })
  const m = await store.putJson(MEDIA_MANIFEST, {
    schemaVersion: 2,
    mediaType: MEDIA_MANIFEST,
    config,
    layers,
  })
  return m.digest
}

test('real docker-registry: push, pull into a fresh store, tags, chunked upload, mount, delete', async () => {
  const a = await newStore('a')
  // one layer above the chunk size: the chunked PATCH path against the real registry
  const digest = await makeImage(a, [1000, 300_000, 5])
  const client = createRegistryClient({ url: reg.url, chunkSize: 64 * 1024, retryBaseMs: 10 })
  try {
    await client.ping()
    const events: TransferEvent[] = []
    const pushed = await pushImage(client, a, 'team/app', digest, {
      tags: ['v1', 'latest'],
      onEvent: (e) => events.push(e),
    })
    assert.equal(pushed.digest, digest)
    assert.equal(pushed.uploaded, 4)
    assert.equal(pushed.skipped, 0)
    assert.deepEqual((await client.listTags('team/app')).sort(), ['latest', 'v1'])
    assert.deepEqual(await client.headManifest('team/app', 'v1'), { digest, mediaType: MEDIA_MANIFEST })

    // a second push with nothing new uploads nothing
    const again = await pushImage(client, a, 'team/app', digest, { tags: ['v1'] })
    assert.equal(again.uploaded, 0)
    assert.equal(again.skipped, 4)

    // cross-repository mount
    const mounted = await pushImage(client, a, 'team/other', digest, { mountFrom: ['team/app'] })
    assert.equal(mounted.uploaded, 0)
    assert.equal(mounted.skipped, 4)

    const b = await newStore('b')
    const pulled = await pullImage(client, 'team/app', 'v1', b)
    assert.equal(pulled.digest, digest)
    assert.equal(pulled.mediaType, MEDIA_MANIFEST)
    for (const d of [pulled.configDigest, ...pulled.manifest.layers.map((l) => l.digest), digest])
      await b.verifyBlob(d)

    // an index with that manifest: pull picks linux/amd64 and returns the child's digest
    const child = await client.getManifest('team/app', digest)
    const index = await a.putJson(MEDIA_INDEX, {
      schemaVersion: 2,
      mediaType: MEDIA_INDEX,
      manifests: [
        {
          mediaType: MEDIA_MANIFEST,
          digest,
          size: child.bytes.length,
          platform: { os: 'linux', architecture: 'amd64' },
        },
      ],
    })
    await pushImage(client, a, 'team/app', index.digest, { tags: ['multi'] })
    const c = await newStore('c')
    const viaIndex = await pullImage(client, 'team/app', 'multi', c)
    assert.equal(viaIndex.digest, digest)
    await assert.rejects(
      pullImage(client, 'team/app', 'multi', c, { platform: { os: 'linux', architecture: 'arm64' } }),
      (err: unknown) =>
        err instanceof GrailError &&
        err.code === 'REGISTRY_NO_PLATFORM' &&
        err.message.includes('linux/amd64'),
    )

    // delete by digest: gone afterwards
    await client.deleteManifest('team/other', digest)
    assert.equal(await client.headManifest('team/other', digest), undefined)
    await assert.rejects(
      client.getManifest('team/other', digest),
      (err: unknown) => err instanceof GrailError && err.code === 'REGISTRY_NOT_FOUND',
    )
  } finally {
    await client.close()
  }
})

test('real docker-registry: unknown repository and invalid names fail with clear errors', async () => {
  const client = createRegistryClient({ url: reg.url, retryBaseMs: 10 })
  try {
    assert.deepEqual(await client.listTags('nope/none'), [])
    assert.equal(await client.hasBlob('nope/none', `sha256:${'0'.repeat(64)}`), false)
    await assert.rejects(
      client.hasBlob('Bad/Name', `sha256:${'0'.repeat(64)}`),
      (err: unknown) => err instanceof GrailError && err.code === 'REGISTRY_REF_INVALID',
    )
    await assert.rejects(
      client.getManifest('a/b', '../x'),
      (err: unknown) => err instanceof GrailError && err.code === 'REGISTRY_REF_INVALID',
    )
  } finally {
    await client.close()
  }
})
