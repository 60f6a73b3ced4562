// Builds through the real CLI with a busybox rootfs base: sandboxed run steps (runc over overlayfs),
// layer caching, no-op rebuilds, reproducibility across directories, and --verify.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { cp, readFile, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js'
import { grail, parseJson, removeDir, tempProject } from '../helpers/project.js'

interface BuildJson {
  images: Array<{
    name: string
    version: number
    digest: string
    unchanged: boolean
    steps: Array<{ label: string; cached: boolean; layer?: string }>
  }>
  verify: Array<{ image: string; reproducible: boolean; files: Array<{ path: string; what: string[] }> }>
}

const spec = (extraRun = '') => `project: demo
images:
  app:
    base: { rootfs: ./rootfs.tar }
    steps:
      - run: echo built > /built && ls /sys/class/net > /nets${extraRun}
      - copy: site/ /srv/www
      - copy: conf/app.conf /etc/app.conf
      - env: { PORT: "8080" }
      - cmd: [/bin/httpd, -f, -h, /srv/www]
`

async function project(extraRun = ''): Promise<string> {
  const dir = await tempProject({
    'grail.yaml': spec(extraRun),
    'site/index.html': '<h1>v1</h1>\n',
    'site/about.html': 'about\n',
    'conf/app.conf': 'a=1\n',
  })
  makeBusyboxRootfs(join(dir, 'rootfs.tar'))
  return dir
}

describe('grail build (busybox rootfs base, runc sandbox)', () => {
  const dirs: string[] = []
  after(async () => {
    for (const d of dirs) await removeDir(d)
  })

  let first: BuildJson
  let dir: string
  before(async () => {
    dir = await project()
    dirs.push(dir)
    first = parseJson<BuildJson>(await grail(['build', '--json'], { cwd: dir }))
  })

  test('a first build makes version 1 with one layer per run/copy step', () => {
    const img = first.images[0]
    assert.ok(img)
    assert.equal(img.version, 1)
    assert.equal(img.unchanged, false)
    assert.match(img.digest, /^sha256:[0-9a-f]{64}$/)
    assert.equal(img.steps.filter((s) => s.layer).length, 3) // run + 2 copies
    assert.equal(img.steps.length, 6) // base + 5 steps
  })

  test('an unchanged rebuild is a no-op that says so and prints the same digest', async () => {
    const res = await grail(['build'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr)
    assert.match(res.stdout, /app v1 unchanged/)
    assert.ok(res.stdout.includes(first.images[0]?.digest ?? 'x'))
  })

  test('changing one file rebuilds only the layers from that copy on', async () => {
    const d = await project()
    dirs.push(d)
    const a = parseJson<BuildJson>(await grail(['build', '--json'], { cwd: d }))
    await writeFile(join(d, 'conf/app.conf'), 'a=2\n')
    const b = parseJson<BuildJson>(await grail(['build', '--json'], { cwd: d }))
    const [ia, ib] = [a.images[0], b.images[0]]
    assert.ok(ia && ib)
    assert.equal(ib.version, 2)
    assert.notEqual(ib.digest, ia.digest)
    const layerSteps = ib.steps.filter((s) => s.layer)
    assert.deepEqual(
      layerSteps.map((s) => s.cached),
      [true, true, false],
      'run and the first copy are reused; only the changed copy is rebuilt',
    )
    assert.equal(ib.steps[0]?.cached, true, 'the base is reused')
    assert.deepEqual(
      layerSteps.slice(0, 2).map((s) => s.layer),
      ia.steps
        .filter((s) => s.layer)
        .slice(0, 2)
        .map((s) => s.layer),
    )
  })

  test('the same project in another directory, with other mtimes, gives the same digest', async () => {
    const other = await project()
    dirs.push(other)
    const later = new Date(Date.now() + 3_600_000)
    for (const f of ['site/index.html', 'site/about.html', 'conf/app.conf', 'grail.yaml'])
      await utimes(join(other, f), later, later)
    await cp(join(dir, 'rootfs.tar'), join(other, 'rootfs.tar'))
    const res = parseJson<BuildJson>(await grail(['build', '--json'], { cwd: other }))
    assert.equal(res.images[0]?.digest, first.images[0]?.digest)
  })

  test('run steps have no network: only loopback exists in the sandbox', async () => {
    const res = await grail(['build', '--json', '--verify'], { cwd: dir })
    const out = parseJson<BuildJson>(res)
    assert.equal(out.verify[0]?.reproducible, true)
    // the layer of the run step lists /nets; read it back from the store
    const { listLayer } = await import('../../src/oci/tar/index.js')
    const runLayer = out.images[0]?.steps.find((s) => s.label.startsWith('run'))?.layer
    assert.ok(runLayer)
    const entries = await listLayer(join(dir, '.grail/oci/blobs/sha256', runLayer.slice(7)))
    assert.equal(
      entries.get('nets')?.sha256,
      createHash('sha256').update('lo\n').digest('hex'),
      '/nets lists only lo',
    )
    assert.ok(entries.has('built'))
    assert.ok(
      !entries.has('proc') && !entries.has('sys') && !entries.has('dev'),
      'sandbox mount points are not content',
    )
  })

  test('--verify passes on a reproducible image', async () => {
    const res = await grail(['build', '--verify'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr)
    assert.match(res.stdout, /verified app/)
  })

  test('--verify catches a run step that writes the current time and names the file', async () => {
    // the sleep makes sure the second build's clock reads another second
    const d = await project(' && date > /build-time && sleep 1')
    dirs.push(d)
    const res = await grail(['build', '--verify'], { cwd: d })
    assert.equal(res.code, 1)
    assert.match(res.stdout, /NOT reproducible app/)
    const named = res.stdout.split('\n').filter((l) => /^ {2}\//.test(l))
    assert.deepEqual(
      named.map((l) => l.trim().split(/\s+/).slice(0, 2).join(' ')),
      ['/build-time content'],
      'only the file that differs is named',
    )
    assert.match(res.stderr, /a second build from nothing gave a different image/)
  })

  test('the image config carries env and cmd; index.json tags name:vN and name:latest', async () => {
    const index = JSON.parse(await readFile(join(dir, '.grail/oci/index.json'), 'utf8')) as {
      manifests: Array<{ digest: string; annotations: Record<string, string> }>
    }
    const tags = index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name'])
    assert.ok(tags.includes('app:v1'))
    assert.ok(tags.includes('app:latest'))
  })
})
