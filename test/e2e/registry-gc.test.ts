// `grail gc --registry` against Debian's docker-registry on loopback: six versions pushed, two of them
// collectable; every other one is protected by a different root (pin, grail.lock, rollback target, what
// runs). The dry run lists exactly the two and deletes nothing; a registry with deletes off fails clearly;
// the real run deletes the two (tags and digests 404) and leaves the protected ones, a manifest the
// catalog has no record of, and the build cache's manifest.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'
import { type TestRegistry, startRegistry } from '../helpers/registry.js'
import { httpdImages } from '../helpers/specs.js'

const spec = `project: regcollect
${httpdImages()}services:
  web:
    image: web
    replicas: 1
    port: 8080
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
policies:
  gc: { keepVersions: 1, keepReleases: 2, keepDeployedWithin: 0s }
`
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json'

interface Sweep {
  dryRun: boolean
  registry: string
  deleted: Array<{ image: string; version: number; repository: string; digest: string; tags: string[] }>
  spared: unknown[]
}

describe('grail gc --registry (real docker-registry)', () => {
  let dir: string
  let reg: TestRegistry
  let noDelete: TestRegistry
  const digests = new Map<number, string>()
  const layersOf = new Map<number, string[]>()
  const status = async (reference: string): Promise<number> =>
    (
      await fetch(`${reg.url}/v2/gc/web/manifests/${reference}`, {
        method: 'HEAD',
        headers: { accept: ACCEPT },
      })
    ).status
  const ok = (res: { code: number; stdout: string; stderr: string }) =>
    assert.equal(res.code, 0, res.stderr + res.stdout)

  before(async () => {
    reg = await startRegistry()
    noDelete = await startRegistry({ deleteEnabled: false })
    dir = await busyboxProject({ 'grail.yaml': spec, 'site/index.html': 'v1\n' })
    let lockOfV2 = ''
    for (let v = 1; v <= 6; v++) {
      await writeFile(join(dir, 'site/index.html'), `v${v}\n`)
      const extra = v === 6 ? ['--cache-to', `${reg.url}/gc`] : []
      const built = parseJson<{ images: Array<{ version: number; digest: string }> }>(
        await grail(['--json', 'build', '--push', `${reg.url}/gc`, ...extra], { cwd: dir }),
      )
      assert.equal(built.images[0]?.version, v)
      digests.set(v, built.images[0]?.digest as string)
      ok(await grail(['build', '--push', `${noDelete.url}/gc`], { cwd: dir }))
      if (v === 2) lockOfV2 = await readFile(join(dir, 'grail.lock'), 'utf8')
      if (v >= 5) ok(await grail(['apply'], { cwd: dir }))
    }
    // the roots: v6 runs (and is the newest), v5 is a rollback target, grail.lock names v2, v1 is pinned
    await writeFile(join(dir, 'grail.lock'), lockOfV2)
    ok(await grail(['pin', 'web@1'], { cwd: dir }))
    // someone else's manifest in the same repository (same blobs, other bytes): the catalog has no record
    const v1 = (await (
      await fetch(`${reg.url}/v2/gc/web/manifests/v1`, { headers: { accept: ACCEPT } })
    ).json()) as Record<string, unknown>
    const foreign = JSON.stringify({ ...v1, annotations: { 'pushed.by': 'someone else' } })
    const put = await fetch(`${reg.url}/v2/gc/web/manifests/foreign`, {
      method: 'PUT',
      headers: { 'content-type': ACCEPT },
      body: foreign,
    })
    assert.equal(put.status, 201)
    for (const ref of ['v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'foreign', 'grail-cache'])
      assert.equal(await status(ref), 200, ref)
    for (const v of [3, 6]) {
      const m = (await (
        await fetch(`${reg.url}/v2/gc/web/manifests/v${v}`, { headers: { accept: ACCEPT } })
      ).json()) as { layers: Array<{ digest: string }> }
      layersOf.set(
        v,
        m.layers.map((l) => l.digest),
      )
    }
  })
  after(async () => {
    if (dir) await tearDown(dir)
    await reg?.stop()
    await noDelete?.stop()
  })

  test('--dry-run lists exactly the collectable versions (reference and digest) and deletes nothing', async () => {
    const res = parseJson<{ registry: Sweep }>(
      await grail(['--json', 'gc', '--registry', `${reg.url}/gc`, '--dry-run', '--grace', '0s'], {
        cwd: dir,
      }),
    )
    assert.equal(res.registry.dryRun, true)
    assert.deepEqual(
      res.registry.deleted.map((d) => [d.version, d.repository, d.digest, d.tags]),
      [
        [3, 'gc/web', digests.get(3), ['v3']],
        [4, 'gc/web', digests.get(4), ['v4']],
      ],
    )
    for (const ref of ['v3', 'v4', digests.get(3) as string]) assert.equal(await status(ref), 200, ref)
    const human = await grail(['gc', '--registry', `${reg.url}/gc`, '--dry-run', '--grace', '0s'], {
      cwd: dir,
    })
    ok(human)
    assert.ok(human.stdout.includes(`would delete ${reg.host}/gc/web@${digests.get(3)} (v3)`), human.stdout)
    assert.match(human.stdout, /dry run: .*: 2 manifest\(s\) would delete/)
  })

  test('a registry with deletes off: a clear error naming it, with the config fix', async () => {
    const res = await grail(['gc', '--registry', `${noDelete.url}/gc`, '--grace', '0s'], { cwd: dir })
    assert.equal(res.code, 1, res.stdout)
    assert.ok(res.stderr.includes(`${noDelete.host} does not allow deleting manifests`), res.stderr)
    assert.match(res.stderr, /hint: .*storage: \{delete: \{enabled: true\}\}/)
    const json = await grail(['--json', 'gc', '--registry', `${noDelete.url}/gc`, '--grace', '0s'], {
      cwd: dir,
    })
    assert.equal(json.code, 1)
    assert.equal(
      (JSON.parse(json.stdout || json.stderr) as { error: { code: string } }).error.code,
      'REGISTRY_DELETE_DISABLED',
    )
    // nothing went from it
    for (const v of [3, 4]) {
      const head = await fetch(`${noDelete.url}/v2/gc/web/manifests/v${v}`, {
        method: 'HEAD',
        headers: { accept: ACCEPT },
      })
      assert.equal(head.status, 200)
    }
  })

  test('the real run deletes them (found again from the tombstones the local gc left) and nothing protected', async () => {
    // the failed run above collected v3 and v4 locally already: the registry sweep still finds them
    const res = parseJson<{ images: { collected: unknown[] }; registry: Sweep }>(
      await grail(['--json', 'gc', '--registry', `${reg.url}/gc`, '--grace', '0s'], { cwd: dir }),
    )
    assert.deepEqual(res.images.collected, [])
    assert.deepEqual(
      res.registry.deleted.map((d) => d.version),
      [3, 4],
    )
    for (const ref of ['v3', 'v4', digests.get(3) as string, digests.get(4) as string])
      assert.equal(await status(ref), 404, ref)
    for (const ref of ['v1', 'v2', 'v5', 'v6', 'foreign', 'grail-cache'])
      assert.equal(await status(ref), 200, ref)
    const events = await grail(['events'], { cwd: dir })
    ok(events)
    assert.equal((events.stdout.match(/registry\.manifest-deleted/g) ?? []).length, 2, events.stdout)
    // again: nothing left to delete
    const again = parseJson<{ registry: Sweep }>(
      await grail(['--json', 'gc', '--registry', `${reg.url}/gc`, '--grace', '0s'], { cwd: dir }),
    )
    assert.deepEqual(again.registry.deleted, [])
  })

  test("the registry's garbage-collect (as docs/lifecycle.md says) then frees their blobs, and only theirs", async () => {
    const v3Only = layersOf.get(3)?.at(-1) as string
    assert.ok(!layersOf.get(6)?.includes(v3Only))
    assert.ok(existsSync(reg.blobPath(v3Only)))
    await reg.kill()
    const gc = spawnSync('/usr/bin/docker-registry', ['garbage-collect', join(reg.dir, 'config.yml')], {
      encoding: 'utf8',
    })
    assert.equal(gc.status, 0, gc.stderr)
    await reg.restart()
    assert.ok(!existsSync(reg.blobPath(v3Only)), 'the layer only v3 had is freed')
    for (const l of layersOf.get(6) ?? []) assert.ok(existsSync(reg.blobPath(l)), l)
    for (const ref of ['v1', 'v2', 'v5', 'v6', 'foreign', 'grail-cache'])
      assert.equal(await status(ref), 200, ref)
  })
})
