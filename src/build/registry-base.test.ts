// Which manifest a `base: {registry}` builds on, and when the registry is asked. The client here is a
// fake that counts its calls (a real registry cannot say it was not asked); test/integration/
// registry-base.test.ts runs the same rules against docker-registry through the CLI.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { GrailError } from '../errors.js'
import type { Lock } from '../lifecycle/lock-file.js'
import type { Digest } from '../oci/digest.js'
import { sha256 } from '../oci/digest.js'
import { DOCKER_MANIFEST, MEDIA_INDEX, MEDIA_MANIFEST } from '../oci/media-types.js'
import type { FetchedManifest, RegistryClient } from '../oci/registry/types.js'
import type { Project } from '../spec/types.js'
import { hostArchitecture } from './env.js'
import { registryBases } from './registry-base.js'

const d = (c: string) => `sha256:${c.repeat(64)}` as Digest
const HOST = 'r.example.com:5000'
const REF = `${HOST}/base/tiny:1`

/** A fake registry: `tags` maps repo:tag to a manifest's bytes; every call is counted. */
function fakeClient(tags: Record<string, { mediaType: string; bytes: Buffer }>) {
  const calls: string[] = []
  const byDigest = new Map(Object.values(tags).map((m) => [sha256(m.bytes), m]))
  const find = (repo: string, reference: string) =>
    reference.startsWith('sha256:') ? byDigest.get(reference as Digest) : tags[`${repo}:${reference}`]
  const client = {
    registry: HOST,
    async headManifest(repo: string, reference: string) {
      calls.push(`HEAD ${repo}:${reference}`)
      const m = find(repo, reference)
      return m ? { digest: sha256(m.bytes), mediaType: m.mediaType } : undefined
    },
    async getManifest(repo: string, reference: string): Promise<FetchedManifest> {
      calls.push(`GET ${repo}:${reference}`)
      const m = find(repo, reference)
      if (!m) throw new GrailError('REGISTRY_NOT_FOUND', `${repo}:${reference} not found`)
      return { mediaType: m.mediaType, digest: sha256(m.bytes), bytes: m.bytes }
    },
  } as unknown as RegistryClient
  return { client, calls }
}

const manifest = (n: string) => ({ mediaType: MEDIA_MANIFEST, bytes: Buffer.from(`{"manifest":"${n}"}`) })
const project = { name: 'p', environments: {} } as unknown as Project
const lockWith = (base?: { ref: string; digest: string }): Lock => ({
  lockVersion: 2,
  project: 'p',
  images: {
    app: { digest: d('a'), spec: d('b'), parent: null, layers: [], packages: [], ...(base ? { base } : {}) },
  },
})

function bases(
  tags: Record<string, { mediaType: string; bytes: Buffer }>,
  opts: { lock?: Lock; refresh?: boolean } = {},
) {
  const fake = fakeClient(tags)
  const connected: string[] = []
  const r = registryBases({
    project,
    lock: opts.lock,
    ...(opts.refresh ? { refresh: true } : {}),
    connect: async (host) => {
      connected.push(host)
      return fake.client
    },
  })
  return { r, calls: fake.calls, connected }
}

describe('registry base digests (fake client)', () => {
  const one = manifest('one')

  test("a ref's own @digest is the answer: the registry is not asked", async () => {
    const { r, calls, connected } = bases({})
    assert.equal(await r.digestOf('app', `${HOST}/base/tiny:1@${d('c')}`), d('c'))
    assert.equal(await r.digestOf('app', `${HOST}/base/tiny@${d('c')}`), d('c'))
    assert.deepEqual([calls, connected], [[], []])
    assert.deepEqual(r.pinOf('app'), { ref: `${HOST}/base/tiny@${d('c')}`, digest: d('c') })
  })

  test("grail.lock's pin for the same ref is the answer, even when the tag is elsewhere now", async () => {
    const { r, calls, connected } = bases(
      { 'base/tiny:1': one },
      { lock: lockWith({ ref: REF, digest: d('e') }) },
    )
    assert.equal(await r.digestOf('app', REF), d('e'))
    assert.deepEqual([calls, connected], [[], []])
    assert.deepEqual(r.pinOf('app'), { ref: REF, digest: d('e') })
  })

  test('a pin for another ref (the spec changed the tag), another image, or --refresh: the tag is resolved', async () => {
    const other = bases(
      { 'base/tiny:1': one },
      { lock: lockWith({ ref: `${HOST}/base/tiny:0`, digest: d('e') }) },
    )
    assert.equal(await other.r.digestOf('app', REF), sha256(one.bytes))
    assert.deepEqual(other.calls, ['HEAD base/tiny:1'])
    assert.deepEqual(other.connected, [HOST])
    const another = bases({ 'base/tiny:1': one }, { lock: lockWith({ ref: REF, digest: d('e') }) })
    assert.equal(await another.r.digestOf('web', REF), sha256(one.bytes))
    const refreshed = bases(
      { 'base/tiny:1': one },
      { lock: lockWith({ ref: REF, digest: d('e') }), refresh: true },
    )
    assert.equal(await refreshed.r.digestOf('app', REF), sha256(one.bytes))
    assert.deepEqual(refreshed.r.pinOf('app'), { ref: REF, digest: sha256(one.bytes) })
  })

  test('a tag is resolved once per run, whatever number of images use it; one client per host', async () => {
    const { r, calls, connected } = bases({ 'base/tiny:1': one })
    const got = await Promise.all([r.digestOf('a', REF), r.digestOf('b', REF), r.digestOf('a', REF)])
    assert.deepEqual(new Set(got), new Set([sha256(one.bytes)]))
    assert.deepEqual(calls, ['HEAD base/tiny:1'])
    await r.client(HOST)
    assert.deepEqual(connected, [HOST])
  })

  test("an index resolves to this machine's platform manifest (what pullImage pulls); none is an error", async () => {
    const mine = manifest('mine')
    const arch = hostArchitecture()
    const entry = (architecture: string, m: { bytes: Buffer }, mediaType = MEDIA_MANIFEST) => ({
      mediaType,
      digest: sha256(m.bytes),
      size: m.bytes.length,
      platform: { os: 'linux', architecture },
    })
    const index = {
      mediaType: MEDIA_INDEX,
      bytes: Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          manifests: [
            entry('s390x', one),
            entry(arch, one, 'application/vnd.oci.image.index.v1+json'),
            entry(arch, mine, DOCKER_MANIFEST),
          ],
        }),
      ),
    }
    const { r, calls } = bases({ 'base/tiny:1': index, 'base/tiny:x': mine })
    assert.equal(await r.digestOf('app', REF), sha256(mine.bytes))
    assert.deepEqual(calls, ['HEAD base/tiny:1', `GET base/tiny:${sha256(index.bytes)}`])
    const only = {
      mediaType: MEDIA_INDEX,
      bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [entry('s390x', one)] })),
    }
    await assert.rejects(
      bases({ 'base/tiny:1': only }).r.digestOf('app', REF),
      (err: unknown) =>
        err instanceof GrailError &&
        err.message === `base ${REF} of image app has no linux/${arch} image (it has: linux/s390x)`,
    )
  })

  test('a tag that is not there, or a manifest that is not an image, is an error naming the ref and image', async () => {
    await assert.rejects(
      bases({}).r.digestOf('app', REF),
      (err: unknown) =>
        err instanceof GrailError &&
        err.code === 'REGISTRY_NOT_FOUND' &&
        err.message === `base ${REF} of image app is not in registry ${HOST}` &&
        /images\.app\.base\.registry/.test(err.hint ?? ''),
    )
    await assert.rejects(
      bases({
        'base/tiny:1': { mediaType: 'application/vnd.example.helm.chart', bytes: Buffer.from('{}') },
      }).r.digestOf('app', REF),
      /is a application\/vnd\.example\.helm\.chart, not an image/,
    )
  })
})
