// Garbage collection against a real store: retention (newest versions, rollback targets), pins, the dry
// run, deletion of unreferenced versions, blobs and snapshots, and a rollback and a build afterwards.
import assert from 'node:assert/strict'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

const spec = `project: collecting
${httpdImages()}services:
  web:
    image: web
    replicas: 1
    port: 8080
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
policies:
  gc: { keepVersions: 1, keepReleases: 1, keepDeployedWithin: 0s }
`

interface Gc {
  dryRun: boolean
  images: { kept: number; collected: Array<{ name: string; version: number; digest: string }> }
  blobs: { deleted: number; bytes: number }
  snapshots: { deleted: number }
}
interface Image {
  version: number
  digest: string
}

describe('grail gc (local provider)', () => {
  let dir: string
  const blobs = async () => (await readdir(join(dir, '.grail', 'oci', 'blobs', 'sha256'))).length
  const versions = async () =>
    parseJson<Image[]>(await grail(['--json', 'images'], { cwd: dir }))
      .map((i) => i.version)
      .sort()

  before(async () => {
    dir = await busyboxProject({ 'grail.yaml': spec, 'site/index.html': 'v1\n' })
    for (let v = 1; v <= 4; v++) {
      await writeFile(join(dir, 'site/index.html'), `v${v}\n`)
      const res = await grail(['up'], { cwd: dir })
      assert.equal(res.code, 0, res.stderr + res.stdout)
    }
    assert.deepEqual(await versions(), [1, 2, 3, 4])
  })
  after(async () => {
    await tearDown(dir)
  })

  test('the dry run lists what would go and the bytes, and deletes nothing', async () => {
    assert.equal((await grail(['pin', 'web@1', '--reason', 'audit'], { cwd: dir })).code, 0)
    const before = await blobs()
    const dry = parseJson<Gc>(await grail(['--json', 'gc', '--dry-run', '--grace', '0s'], { cwd: dir }))
    assert.equal(dry.dryRun, true)
    assert.deepEqual(
      dry.images.collected.map((i) => i.version),
      [2],
      'v4 runs, v3 is a rollback target, v1 is pinned',
    )
    assert.ok(dry.blobs.deleted >= 3 && dry.blobs.bytes > 0, JSON.stringify(dry.blobs))
    assert.equal(await blobs(), before)
    assert.deepEqual(await versions(), [1, 2, 3, 4])
    const human = await grail(['gc', '--dry-run', '--grace', '0s'], { cwd: dir })
    assert.match(human.stdout, /would delete web@2/)
    assert.match(human.stdout, /dry run: 1 image version\(s\) would delete, 3 kept/)
  })

  test('gc deletes the version, its blobs and snapshots; a rollback and a rebuild work afterwards', async () => {
    const before = await blobs()
    const res = parseJson<Gc>(await grail(['--json', 'gc', '--grace', '0s'], { cwd: dir }))
    assert.deepEqual(
      res.images.collected.map((i) => i.version),
      [2],
    )
    assert.equal(await blobs(), before - res.blobs.deleted)
    assert.ok(res.snapshots.deleted >= 1)
    assert.deepEqual(await versions(), [1, 3, 4])
    const rollback = await grail(['rollback', 'web'], { cwd: dir })
    assert.equal(rollback.code, 0, rollback.stderr + rollback.stdout)
    const status = parseJson<{ instances: Array<{ image: string; health: string }> }>(
      await grail(['--json', 'status'], { cwd: dir }),
    )
    assert.deepEqual(
      status.instances.map((i) => [i.image, i.health]),
      [['web v3', 'healthy']],
    )
    // the layer of v2 is gone; building that content again makes it anew under a new version number
    await writeFile(join(dir, 'site/index.html'), 'v2\n')
    const built = await grail(['build'], { cwd: dir })
    assert.equal(built.code, 0, built.stderr + built.stdout)
    assert.match(built.stdout, /built web v5/)
    const again = parseJson<Gc>(await grail(['--json', 'gc', '--dry-run', '--grace', '0s'], { cwd: dir }))
    assert.ok(!again.images.collected.some((i) => i.version === 3), 'v3 runs now')
  })
})
