import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, beforeEach, test } from 'node:test'
import { type FakeRegistry, startFakeRegistry } from '../../../test/helpers/fake-registry.js'
import { GrailError } from '../../errors.js'
import type { Digest } from '../digest.js'
import { sha256 } from '../digest.js'
import {
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  MEDIA_CONFIG,
  MEDIA_LAYER_TAR,
  MEDIA_MANIFEST,
} from '../media-types.js'
import { type OciStore, openStore } from '../store.js'
import { createRegistryClient, DOCKER_MANIFEST_LIST } from './client.js'
import { pullImage, pushImage } from './transfer.js'

let fake: FakeRegistry
let tmp: string
let n = 0
let client: ReturnType<typeof createRegistryClient>

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'grail-reg-transfer-'))
})
after(async () => {
  await rm(tmp, { recursive: true, force: true })
})
beforeEach(async () => {
  fake = await startFakeRegistry()
  client = createRegistryClient({ url: fake.url, retryBaseMs: 5, retries: 2 })
})
afterEach(async () => {
  await client.close()
  await fake.close()
})

const newStore = () => {
  n++
  return openStore(join(tmp, `s${n}`, 'oci'), join(tmp, `s${n}`, 'tmp'))
}

async function makeImage(store: OciStore): Promise<{ digest: Digest; layers: Digest[]; config: Digest }> {
  const layers = [await store.putBytes(randomBytes(3000)), await store.putBytes(randomBytes(10))]
  const config = await store.putJson(MEDIA_CONFIG, { architecture: 'amd64', os: 'linux', config: {} })
  const m = await store.putJson(MEDIA_MANIFEST, {
    schemaVersion: 2,
    mediaType: MEDIA_MANIFEST,
    config,
    layers: layers.map((l) => ({ mediaType: MEDIA_LAYER_TAR, ...l })),
  })
  return { digest: m.digest, layers: layers.map((l) => l.digest), config: config.digest }
}

test('fake registry: a push whose blob upload fails PUTs no manifest; the next push completes', async () => {
  const store = await newStore()
  const img = await makeImage(store)
  fake.hooks.push((_req, res, _b, hit) => {
    if (hit.method === 'PUT' && hit.query.includes(img.layers[0]?.slice(7) ?? 'x')) {
      res.writeHead(500).end()
      return true
    }
    return false
  })
  await assert.rejects(
    pushImage(client, store, 'a', img.digest, { tags: ['v1'] }),
    (err: unknown) => err instanceof GrailError && err.code === 'REGISTRY_UNREACHABLE',
  )
  assert.equal(fake.manifests.size, 0, 'no manifest points at a missing blob')
  assert.equal(
    fake.hits.filter((h) => h.path.includes('/manifests/') && h.method !== 'HEAD').length,
    0,
    'no manifest PUT',
  )
  fake.hooks.length = 0
  const pushed = await pushImage(client, store, 'a', img.digest, { tags: ['v1'] })
  assert.equal(pushed.digest, img.digest)
  assert.ok(pushed.skipped >= 1, 'what the cut push uploaded is skipped')
  assert.equal(pushed.uploaded + pushed.skipped, 3)
  assert.equal(sha256(fake.manifests.get('a:v1')?.bytes ?? ''), img.digest)
})

test('fake registry: a pull whose layer comes back altered fails naming the digest and stores nothing', async () => {
  const src = await newStore()
  const img = await makeImage(src)
  await pushImage(client, src, 'a', img.digest, { tags: ['v1'] })
  const layer = img.layers[0] as Digest
  const good = fake.blobs.get(layer) as Buffer
  const bad = Buffer.from(good)
  bad[10] = (bad[10] as number) ^ 0xff
  fake.blobs.set(layer, bad)
  const dest = await newStore()
  await assert.rejects(
    pullImage(client, 'a', 'v1', dest),
    (err: unknown) =>
      err instanceof GrailError && err.code === 'DIGEST_MISMATCH' && err.message.includes(layer),
  )
  assert.equal(dest.hasBlob(layer), false)
  assert.equal(dest.hasBlob(img.digest), false, 'no manifest stored')
  assert.deepEqual(await readdir(dest.tmpDir), [], 'no temp file left')
  // once the registry serves the right bytes, the pull completes (the sound blobs are kept)
  fake.blobs.set(layer, good)
  const pulled = await pullImage(client, 'a', 'v1', dest)
  assert.equal(pulled.digest, img.digest)
  assert.equal(pulled.configDigest, img.config)
  await dest.verifyBlob(img.digest)
})

test('fake registry: Docker v2 manifests and manifest lists are pulled with their exact bytes', async () => {
  const src = await newStore()
  const layer = await src.putBytes(randomBytes(100))
  const config = await src.putBytes(JSON.stringify({ architecture: 'arm64', os: 'linux', config: {} }))
  // not canonical JSON: the bytes, not a re-serialisation, are the identity
  const bytes = Buffer.from(
    `{\n   "schemaVersion": 2,\n   "mediaType": "${DOCKER_MANIFEST}",\n   "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": ${config.size}, "digest": "${config.digest}"},\n   "layers": [{"mediaType": "${DOCKER_LAYER_GZIP}", "size": ${layer.size}, "digest": "${layer.digest}"}]\n}`,
  )
  for (const d of [layer.digest, config.digest]) fake.blobs.set(d, readFileSync(src.blobPath(d)))
  const digest = sha256(bytes)
  fake.manifests.set(`d:${digest}`, { type: DOCKER_MANIFEST, bytes })
  const list = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST_LIST,
      manifests: [
        {
          mediaType: DOCKER_MANIFEST,
          digest,
          size: bytes.length,
          platform: { os: 'linux', architecture: 'arm64' },
        },
      ],
    }),
  )
  fake.manifests.set('d:latest', { type: DOCKER_MANIFEST_LIST, bytes: list })
  const dest = await newStore()
  await assert.rejects(
    pullImage(client, 'd', 'latest', dest),
    (err: unknown) =>
      err instanceof GrailError && err.code === 'REGISTRY_NO_PLATFORM' && err.message.includes('linux/arm64'),
  )
  const pulled = await pullImage(client, 'd', 'latest', dest, {
    platform: { os: 'linux', architecture: 'arm64' },
  })
  assert.equal(pulled.digest, digest)
  assert.equal(pulled.mediaType, DOCKER_MANIFEST)
  assert.ok(readFileSync(dest.blobPath(digest)).equals(bytes))
})

test('fake registry: a manifest PUT refused with MANIFEST_BLOB_UNKNOWN re-checks the blobs, pushes the missing one, retries', async () => {
  const store = await newStore()
  const img = await makeImage(store)
  let refused = 0
  fake.hooks.push((_req, res, _b, hit) => {
    if (hit.method === 'PUT' && hit.path.includes('/manifests/') && refused === 0) {
      refused++
      // as if the registry lost the layer between its upload and the manifest
      fake.blobs.delete(img.layers[0] as Digest)
      res.writeHead(400, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({ errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry' }] }),
      )
      return true
    }
    return false
  })
  const pushed = await pushImage(client, store, 'a', img.digest, { tags: ['v1'] })
  assert.equal(refused, 1)
  assert.equal(pushed.uploaded, 4, 'three blobs, and the lost one again')
  assert.ok(fake.blobs.has(img.layers[0] as Digest))
  assert.equal(sha256(fake.manifests.get('a:v1')?.bytes ?? ''), img.digest)
})
