// `base: {registry: host/repo:tag}` through the real CLI against Debian's docker-registry on loopback
// (plain http): the first build resolves the tag and pins the manifest digest in grail.lock; moving the
// tag to another image changes nothing (warm, and on a fresh .grail that pulls the pinned digest);
// `--refresh` moves the pin; a tag that is not there is an error naming it; with the registry gone, a
// pinned build still answers without it.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import tarStream from 'tar-stream'
import { hostArchitecture } from '../../src/build/env.js'
import type { Digest } from '../../src/oci/digest.js'
import { MEDIA_CONFIG, MEDIA_LAYER_GZIP, MEDIA_MANIFEST } from '../../src/oci/media-types.js'
import { createRegistryClient } from '../../src/oci/registry/client.js'
import { pushImage } from '../../src/oci/registry/transfer.js'
import type { RegistryClient } from '../../src/oci/registry/types.js'
import { type OciStore, openStore } from '../../src/oci/store.js'
import { grail, parseJson, removeDir, tempProject } from '../helpers/project.js'
import { type LocalRegistry, startRegistry } from '../helpers/local-registry.js'

interface BuildJson {
  images: Array<{
    name: string
    digest: string
    unchanged: boolean
    registryBase?: { ref: string; digest: string }
  }>
}
interface LockJson {
  images: Record<string, { digest: string; base?: { ref: string; digest: string }; layers: string[] }>
}

/**
 * A one-layer image written into `store` (a gzip layer holding /etc/base-version, or `tarBytes`, under
 * the media type given): its manifest and layer.
 */
async function baseImage(
  store: OciStore,
  work: string,
  version: string,
  mediaType = MEDIA_LAYER_GZIP,
  tarBytes?: Buffer,
): Promise<{ manifest: Digest; layer: Digest }> {
  const root = join(work, `root-${version}`)
  await mkdir(join(root, 'etc'), { recursive: true })
  await writeFile(join(root, 'etc', 'base-version'), `${version}\n`)
  const tar =
    tarBytes ??
    execFileSync('tar', [
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--mtime=@1',
      '-C',
      root,
      '-cf',
      '-',
      'etc',
    ])
  const layer = await store.putBytes(gzipSync(tar))
  const config = await store.putJson(MEDIA_CONFIG, {
    architecture: hostArchitecture(),
    os: 'linux',
    config: { Env: ['PATH=/usr/bin:/bin'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(tar).digest('hex')}`] },
  })
  const manifest = await store.putJson(MEDIA_MANIFEST, {
    schemaVersion: 2,
    mediaType: MEDIA_MANIFEST,
    config,
    layers: [{ mediaType, digest: layer.digest, size: layer.size }],
  })
  return { manifest: manifest.digest, layer: layer.digest }
}

describe('base: {registry} (docker-registry on loopback, real CLI)', () => {
  let reg: LocalRegistry
  let work: string
  let dir: string
  let client: RegistryClient & { close(): Promise<void> }
  let store: OciStore
  let one: { manifest: Digest; layer: Digest }
  let two: { manifest: Digest; layer: Digest }
  let ref: string
  let first: BuildJson['images'][number]

  const lock = async (): Promise<LockJson> =>
    JSON.parse(await readFile(join(dir, 'grail.lock'), 'utf8')) as LockJson
  const build = async (...flags: string[]) =>
    parseJson<BuildJson>(await grail(['build', '--json', ...flags], { cwd: dir }))
      .images[0] as BuildJson['images'][number]

  before(async () => {
    reg = await startRegistry()
    work = await mkdtemp(join(tmpdir(), 'grail-regbase-'))
    store = await openStore(join(work, 'oci'), join(work, 'tmp'))
    client = createRegistryClient({ url: reg.url })
    one = await baseImage(store, work, 'one')
    two = await baseImage(store, work, 'two')
    await pushImage(client, store, 'base/tiny', one.manifest, { tags: ['1'] })
    ref = `${reg.host}/base/tiny:1`
    dir = await tempProject({
      'grail.yaml': `project: regbase
registry: {url: "${reg.url}", auth: none}
images:
  app:
    base: {registry: "${ref}"}
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/true]
`,
      'site/index.html': 'hi\n',
    })
  })
  after(async () => {
    await client?.close()
    await reg?.stop()
    if (dir) await removeDir(dir)
    if (work) await rm(work, { recursive: true, force: true })
  })

  test('the first build resolves the tag and pins its manifest digest in grail.lock', async () => {
    first = await build()
    assert.equal(first.unchanged, false)
    assert.deepEqual(first.registryBase, { ref, digest: one.manifest })
    const l = await lock()
    assert.deepEqual(l.images.app?.base, { ref, digest: one.manifest })
    assert.equal(l.images.app?.digest, first.digest)
    assert.equal(
      l.images.app?.layers[0],
      one.layer,
      'the base layer is the registry image’s layer, as pulled',
    )
  })

  test('the tag moved to another image: a plain build stays on the pin (warm, and on a fresh .grail)', async () => {
    await pushImage(client, store, 'base/tiny', two.manifest, { tags: ['1'] })
    assert.equal((await client.headManifest('base/tiny', '1'))?.digest, two.manifest)
    const before = await readFile(join(dir, 'grail.lock'), 'utf8')
    const warm = await build()
    assert.equal(warm.unchanged, true)
    assert.equal(warm.digest, first.digest)
    // a fresh machine: nothing local, so the pinned digest is pulled by digest (the tag says otherwise)
    await rm(join(dir, '.grail'), { recursive: true, force: true })
    const fresh = await build()
    assert.equal(fresh.digest, first.digest)
    assert.deepEqual(fresh.registryBase, { ref, digest: one.manifest })
    assert.equal(await readFile(join(dir, 'grail.lock'), 'utf8'), before)
  })

  test('--refresh resolves the tag again: the pin and the image move', async () => {
    const refreshed = await build('--refresh')
    assert.notEqual(refreshed.digest, first.digest)
    const l = await lock()
    assert.deepEqual(l.images.app?.base, { ref, digest: two.manifest })
    assert.equal(l.images.app?.layers[0], two.layer)
    assert.equal(l.images.app?.digest, refreshed.digest)
  })

  test('a tag the registry does not have is an error naming the reference', async () => {
    const spec = await readFile(join(dir, 'grail.yaml'), 'utf8')
    await writeFile(join(dir, 'grail.yaml'), spec.replace(':1"', ':nosuch"'))
    try {
      const res = await grail(['build'], { cwd: dir })
      assert.notEqual(res.code, 0)
      assert.match(
        res.stderr,
        new RegExp(`base ${reg.host}/base/tiny:nosuch of image app is not in registry ${reg.host}`),
      )
    } finally {
      await writeFile(join(dir, 'grail.yaml'), spec)
    }
  })

  test('a base with a zstd layer, or a layer that climbs out of the root, is refused naming the layer', async () => {
    const zstd = await baseImage(store, work, 'zstd', 'application/vnd.oci.image.layer.v1.tar+zstd')
    await pushImage(client, store, 'base/bad', zstd.manifest, { tags: ['zstd'] })
    const pack = tarStream.pack()
    pack.entry({ name: '../../etc/evil', mode: 0o644, mtime: new Date(1000) }, 'x\n')
    pack.finalize()
    const chunks: Buffer[] = []
    for await (const c of pack) chunks.push(c as Buffer)
    const evil = await baseImage(store, work, 'evil', MEDIA_LAYER_GZIP, Buffer.concat(chunks))
    await pushImage(client, store, 'base/bad', evil.manifest, { tags: ['evil'] })
    const spec = await readFile(join(dir, 'grail.yaml'), 'utf8')
    try {
      await writeFile(join(dir, 'grail.yaml'), spec.replace('base/tiny:1"', 'base/bad:zstd"'))
      let res = await grail(['build'], { cwd: dir })
      assert.notEqual(res.code, 0)
      assert.match(
        res.stderr,
        /layer 1 \(sha256:[0-9a-f]{64}\) is application\/vnd\.oci\.image\.layer\.v1\.tar\+zstd/,
      )
      assert.match(res.stderr, /gzip/)
      await writeFile(join(dir, 'grail.yaml'), spec.replace('base/tiny:1"', 'base/bad:evil"'))
      res = await grail(['build'], { cwd: dir })
      assert.notEqual(res.code, 0)
      assert.match(res.stderr, new RegExp(`${reg.host}/base/bad@${evil.manifest}: layer 1`))
      assert.match(res.stderr, /\.\.\/\.\.\/etc\/evil/)
    } finally {
      await writeFile(join(dir, 'grail.yaml'), spec)
    }
  })

  test('a pin the registry no longer has: a fresh machine says so and suggests --refresh', async () => {
    const pinned = (await lock()).images.app?.base?.digest as Digest
    await client.deleteManifest('base/tiny', pinned)
    const fresh = await mkdtemp(join(tmpdir(), 'grail-regbase-fresh-'))
    try {
      await cp(dir, fresh, { recursive: true, filter: (src) => !src.endsWith('/.grail') })
      const res = await grail(['build'], { cwd: fresh })
      assert.notEqual(res.code, 0)
      const expected = `base ${ref} is pinned to ${pinned} (grail.lock), which registry ${reg.host} no longer has`
      assert.ok(res.stderr.includes(expected), res.stderr)
      assert.match(res.stderr, /grail build --refresh/)
    } finally {
      await rm(fresh, { recursive: true, force: true })
    }
  })

  test('with the registry gone, a pinned build needs it for nothing', async () => {
    const before = await lock()
    await reg.stop()
    const again = await build()
    assert.equal(again.unchanged, true)
    assert.equal(again.digest, before.images.app?.digest)
    assert.deepEqual((await lock()).images.app?.base, before.images.app?.base)
  })
})
