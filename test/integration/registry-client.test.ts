import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { type LocalRegistry, startRegistry } from '../helpers/local-registry.js'
import { GrailError } from '../../src/errors.js'
import type { Digest } from '../../src/oci/digest.js'
import { MEDIA_CONFIG, MEDIA_INDEX, MEDIA_LAYER_TAR, MEDIA_MANIFEST } from '../../src/oci/media-types.js'
import { type OciStore, openStore } from '../../src/oci/store.js'
import { createRegistryClient } from '../../src/oci/registry/client.js'
import { pullImage, pushImage } from '../../src/oci/registry/transfer.js'
import type { TransferEvent } from '../../src/oci/registry/types.js'

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

test('real docker-registry: 20 concurrent pushes of images sharing layers all succeed and pull back', async () => {
  const a = await newStore('many')
  const shared = await a.putBytes(randomBytes(200_000))
  const digests: Digest[] = []
  for (let i = 0; i < 20; i++) {
    const own = await a.putBytes(randomBytes(1000 + i))
    const config = await a.putJson(MEDIA_CONFIG, { architecture: 'amd64', os: 'linux', config: {}, i })
    const layers = [shared, own].map((l) => ({ mediaType: MEDIA_LAYER_TAR, ...l }))
    digests.push(
      (await a.putJson(MEDIA_MANIFEST, { schemaVersion: 2, mediaType: MEDIA_MANIFEST, config, layers }))
        .digest,
    )
  }
  const client = createRegistryClient({ url: reg.url, retryBaseMs: 10 })
  try {
    const results = await Promise.all(
      digests.map((d, i) =>
        pushImage(client, a, i % 2 === 0 ? 'many/even' : 'many/odd', d, { tags: [`t${i}`] }),
      ),
    )
    assert.deepEqual(
      results.map((r) => r.digest),
      digests,
    )
    const b = await newStore('many-b')
    for (const [i, d] of digests.entries()) {
      const p = await pullImage(client, i % 2 === 0 ? 'many/even' : 'many/odd', `t${i}`, b)
      assert.equal(p.digest, d)
    }
  } finally {
    await client.close()
  }
})

test('real docker-registry killed in the middle of a push: no manifest is there, and the next push completes', async () => {
  const own = await startRegistry()
  try {
    const a = await newStore('crash')
    const big = await a.putBytes(randomBytes(8 * 1024 * 1024))
    const small = await a.putBytes(randomBytes(100))
    const config = await a.putJson(MEDIA_CONFIG, { architecture: 'amd64', os: 'linux', config: {} })
    const layers = [big, small].map((l) => ({ mediaType: MEDIA_LAYER_TAR, ...l }))
    const digest = (
      await a.putJson(MEDIA_MANIFEST, { schemaVersion: 2, mediaType: MEDIA_MANIFEST, config, layers })
    ).digest
    // the registry dies once 2 MiB of the big layer are on their way
    let sent = 0
    let crashed: Promise<void> | undefined
    const cutting: OciStore = {
      ...a,
      openBlob(d) {
        const s = a.openBlob(d)
        if (d === big.digest) {
          s.on('data', (c) => {
            sent += (c as Buffer).length
            if (sent > 2 * 1024 * 1024) crashed ??= own.crash()
          })
        }
        return s
      },
    }
    const c1 = createRegistryClient({ url: own.url, chunkSize: 1024 * 1024, retries: 2, retryBaseMs: 10 })
    try {
      await assert.rejects(
        pushImage(c1, cutting, 'crash/app', digest, { tags: ['v1'] }),
        (err: unknown) =>
          err instanceof GrailError && err.code === 'REGISTRY_UNREACHABLE' && err.message.includes(own.host),
      )
    } finally {
      await c1.close()
    }
    assert.ok(crashed, 'the registry was killed mid-push')
    await crashed
    await own.restart()
    const c2 = createRegistryClient({ url: own.url, chunkSize: 1024 * 1024, retryBaseMs: 10 })
    try {
      assert.equal(await c2.headManifest('crash/app', digest), undefined, 'no manifest after a cut push')
      assert.equal(await c2.headManifest('crash/app', 'v1'), undefined)
      const pushed = await pushImage(c2, a, 'crash/app', digest, { tags: ['v1'] })
      assert.equal(pushed.digest, digest)
      const b = await newStore('crash-b')
      assert.equal((await pullImage(c2, 'crash/app', 'v1', b)).digest, digest)
      await b.verifyBlob(big.digest)
    } finally {
      await c2.close()
    }
  } finally {
    await own.stop()
  }
})
