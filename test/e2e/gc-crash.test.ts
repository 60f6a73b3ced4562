// `grail gc` killed (SIGKILL) at each of its steps leaves an OCI layout that skopeo reads in full, tag
// by tag, and the next gc finishes the job: only the kept versions' blobs remain.
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { GC_CRASH_POINTS } from '../../src/util/crash-points.js'
import { runCommand } from '../../src/util/exec.js'
import { busyboxProject, grail, parseJson, removeDir, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

const spec = `project: gccrash
${httpdImages(['run: [/bin/sh, -c, "date > /built-at"]'])}services:
  web:
    image: web
    replicas: 1
    port: 8080
policies:
  gc: { keepVersions: 1, keepReleases: 1, keepDeployedWithin: 0s }
`

interface Index {
  manifests: Array<{ digest: string; annotations?: Record<string, string> }>
}
interface Gc {
  images: { collected: Array<{ version: number }> }
}

describe('grail gc killed at every step', () => {
  let dir: string
  let scratch: string
  let round = 0
  const layout = () => join(dir, '.grail', 'oci')

  /** Every tag of index.json can be copied out by skopeo: manifest, config and every layer are there. */
  async function assertLayoutReadable(point: string): Promise<void> {
    const index = JSON.parse(await readFile(join(layout(), 'index.json'), 'utf8')) as Index
    assert.ok(index.manifests.length > 0, point)
    for (const m of index.manifests) {
      const tag = m.annotations?.['org.opencontainers.image.ref.name'] as string
      const dest = join(scratch, `${round}-${tag.replace(/[:]/g, '-')}`)
      const res = await runCommand(
        { file: 'skopeo', args: ['copy', '--quiet', `oci:${layout()}:${tag}`, `dir:${dest}`] },
        { allowFailure: true },
      )
      assert.equal(res.code, 0, `after a kill at ${point}, skopeo cannot copy ${tag}: ${res.stderr}`)
    }
  }

  before(async () => {
    dir = await busyboxProject({ 'grail.yaml': spec, 'site/index.html': 'start\n' })
    scratch = await mkdtemp(join(tmpdir(), 'grail-gc-crash-'))
  })
  after(async () => {
    await tearDown(dir)
    await removeDir(scratch)
  })

  for (const point of GC_CRASH_POINTS) {
    test(`a kill at ${point}`, async () => {
      round++
      // three new versions: the last runs, the one before is its rollback target (keepReleases: 1), and
      // the first is collectable, with what earlier rounds left
      for (const v of ['a', 'b', 'c']) {
        await writeFile(join(dir, 'site/index.html'), `${point} ${v}\n`)
        const up = await grail(['up'], { cwd: dir })
        assert.equal(up.code, 0, up.stderr + up.stdout)
      }
      const killed = await grail(['gc', '--grace', '0s'], { cwd: dir, env: { GRAIL_CRASH_AT: point } })
      assert.equal(killed.code, -1, `gc was to be killed at ${point}: ${killed.stderr}${killed.stdout}`)
      await assertLayoutReadable(point)

      const next = parseJson<Gc>(await grail(['--json', 'gc', '--grace', '0s'], { cwd: dir }))
      assert.ok(next.images !== undefined)
      await assertLayoutReadable(`${point}, then a full gc`)
      // what is left is exactly what the kept versions use, and no half-deleted snapshot
      const images = parseJson<Array<{ digest: string }>>(await grail(['--json', 'images'], { cwd: dir }))
      assert.equal(images.length, 2, JSON.stringify(images))
      const blobs = (await readdir(join(layout(), 'blobs', 'sha256'))).sort()
      const live = new Set<string>()
      for (const image of images) {
        const manifest = JSON.parse(
          await readFile(join(layout(), 'blobs', 'sha256', image.digest.slice(7)), 'utf8'),
        ) as { config: { digest: string }; layers: Array<{ digest: string }> }
        for (const d of [image.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)])
          live.add(d.slice(7))
      }
      assert.deepEqual(blobs, [...live].sort())
      const snapshots = await readdir(join(dir, '.grail', 'snapshots'))
      assert.deepEqual(
        snapshots.filter((s) => !/^[0-9a-f]{64}$/.test(s) && s !== 'empty'),
        [],
      )
      const status = await grail(['status'], { cwd: dir })
      assert.equal(status.code, 0, status.stderr)
    })
  }
})
