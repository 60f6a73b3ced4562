// The shared build cache against Debian's docker-registry on loopback: machine A (its own project copy
// and .grail/) builds examples/hello and pushes the cache; machine B, a fresh copy with an empty .grail/,
// builds it with --cache-from: no step runs (not the Debian bootstrap, not the `run` step), the digest
// is A's; a one-file change on B runs the copy step only. A cache that cannot be read never fails a build.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { chmod, cp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { freePort } from '../helpers/net.js'
import {
  REPO,
  busyboxProject,
  grail,
  parseJson,
  removeDir,
  tempProject,
  writeFiles,
} from '../helpers/project.js'
import { type TestRegistry, startRegistry } from '../helpers/registry.js'
import { httpdImages } from '../helpers/specs.js'

interface Step {
  label: string
  cached: boolean
  layer?: string
}
interface Built {
  images: Array<{ name: string; digest: string; unchanged: boolean; steps: Step[] }>
  cache?: Array<{ image: string; reference: string; digest: string; keys: number; uploaded: number }>
}

/** A copy of examples/hello in a temp dir: the same spec and site, its own (empty) .grail/. */
async function helloCopy(): Promise<string> {
  const dir = await tempProject({})
  await cp(join(REPO, 'examples/hello/grail.yaml'), join(dir, 'grail.yaml'))
  await cp(join(REPO, 'examples/hello/site'), join(dir, 'site'), { recursive: true })
  return dir
}

/** The layer-making steps (base, run, copy): config steps are never run, cached or not. */
const layerSteps = (steps: Step[]) => steps.filter((s) => /^(base|run|copy) /.test(s.label))

describe('shared build cache in a registry (examples/hello, real docker-registry)', () => {
  let reg: TestRegistry
  let a: string
  let b: string
  let url: string
  let built: Built

  before(async () => {
    reg = await startRegistry()
    url = `${reg.url}/grail-test`
    a = await helloCopy()
    b = await helloCopy()
    built = parseJson<Built>(await grail(['--json', 'build', '--cache-to', url], { cwd: a }))
  })
  after(async () => {
    await reg?.stop()
    for (const d of [a, b]) if (d) await removeDir(d)
  })

  test('machine A pushes the cache manifest <prefix>/hello:grail-cache, naming every layer it made', async () => {
    const img = built.images[0]
    assert.ok(img)
    assert.ok(
      layerSteps(img.steps).some((s) => !s.cached && s.label.startsWith('run ')),
      'A ran its steps',
    )
    assert.equal(built.cache?.length, 1)
    assert.equal(built.cache?.[0]?.reference, `${reg.host}/grail-test/hello:grail-cache`)
    const res = await fetch(`${reg.url}/v2/grail-test/hello/manifests/grail-cache`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    })
    assert.equal(res.status, 200)
    const manifest = (await res.json()) as {
      config: { mediaType: string }
      layers: Array<{ digest: string }>
    }
    assert.equal(manifest.config.mediaType, 'application/vnd.grail.build-cache.v1+json')
    // the registry's garbage-collect keeps what the manifest names: every layer of the image is there
    const named = new Set(manifest.layers.map((l) => l.digest))
    for (const s of layerSteps(img.steps).filter((s) => s.layer))
      assert.ok(named.has(s.layer as string), s.label)
  })

  test('machine B (fresh .grail/) with --cache-from runs no step and gets the digest A got', async () => {
    const t0 = Date.now()
    const res = await grail(['--json', 'build', '--cache-from', url], { cwd: b })
    const onB = parseJson<Built>(res)
    const img = onB.images[0]
    assert.ok(img)
    assert.equal(img.digest, built.images[0]?.digest)
    assert.equal(img.unchanged, false, 'B had no version: it recorded one')
    // every step's report says cached, the base (mmdebstrap) and the `run` step included
    const steps = layerSteps(img.steps)
    assert.deepEqual(
      steps.map((s) => s.label.split(' ')[0]),
      ['base', 'run', 'copy'],
    )
    assert.deepEqual(
      steps.filter((s) => !s.cached).map((s) => s.label),
      [],
    )
    assert.doesNotMatch(res.stderr, /warning/)
    // no bootstrap ran: mmdebstrap alone takes longer than this whole build
    assert.ok(Date.now() - t0 < 8000, `B's build took ${Date.now() - t0} ms`)
    // and B's own cache has them now: a second build is a no-op without the registry
    const again = parseJson<Built>(await grail(['--json', 'build'], { cwd: b }))
    assert.equal(again.images[0]?.unchanged, true)
  })

  test('a one-file change on B runs the copy step (from that file on) only', async () => {
    const page = join(b, 'site', 'index.html')
    await writeFile(page, `${await readFile(page, 'utf8')}<!-- changed on B -->\n`)
    const onB = parseJson<Built>(await grail(['--json', 'build', '--cache-from', url], { cwd: b }))
    const img = onB.images[0]
    assert.ok(img)
    assert.notEqual(img.digest, built.images[0]?.digest)
    assert.deepEqual(
      layerSteps(img.steps).map((s) => `${s.label.split(' ')[0]} ${s.cached ? 'cached' : 'ran'}`),
      ['base cached', 'run cached', 'copy ran'],
    )
  })
})

describe('a shared build cache that cannot be read never fails a build', () => {
  const spec = `project: cachefail\n${httpdImages(['run: echo made > /srv/made'])}`
  let dir: string
  before(async () => {
    dir = await busyboxProject({ 'grail.yaml': spec, 'site/index.html': 'hi\n' })
  })
  after(async () => {
    if (dir) await removeDir(dir)
  })

  test('a registry that does not answer: one warning line, a local build, exit 0', async () => {
    const port = await freePort()
    const res = await grail(['--json', 'build', '--cache-from', `http://127.0.0.1:${port}/x`], { cwd: dir })
    const out = parseJson<Built>(res)
    assert.ok(out.images[0]?.steps.some((s) => s.label.startsWith('run ') && !s.cached))
    const warnings = res.stderr.split('\n').filter((l) => /warning/.test(l))
    assert.equal(warnings.length, 1, res.stderr)
    assert.match(warnings[0] as string, new RegExp(`127\\.0\\.0\\.1:${port}/x/web:grail-cache`))
  })

  test('a cache entry that lies (a diff id not of its layer) is not used: one warning, the step runs, same digest', async () => {
    const reg = await startRegistry()
    const a = await busyboxProject({ 'grail.yaml': spec, 'site/index.html': 'hi\n' })
    const b = await busyboxProject({ 'grail.yaml': spec, 'site/index.html': 'hi\n' })
    try {
      const url = `${reg.url}/p`
      const onA = parseJson<Built>(await grail(['--json', 'build', '--cache-to', url], { cwd: a }))
      // rewrite the map in the registry: the run step's entry claims another diff id
      const api = `${reg.url}/v2/p/web`
      const accept = { accept: 'application/vnd.oci.image.manifest.v1+json' }
      const manifest = (await (await fetch(`${api}/manifests/grail-cache`, { headers: accept })).json()) as {
        config: { digest: string; size: number }
      }
      const map = (await (await fetch(`${api}/blobs/${manifest.config.digest}`)).json()) as {
        layers: Record<string, { diffId: string }>
      }
      const runKey = onA.images[0]?.steps.find((s) => s.label.startsWith('run '))?.layer
      const entry = Object.values(map.layers).find((l) => (l as { digest?: string }).digest === runKey)
      assert.ok(entry, 'the run step is in the map')
      entry.diffId = `sha256:${'0'.repeat(64)}`
      const bytes = Buffer.from(JSON.stringify(map))
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
      const start = await fetch(`${api}/blobs/uploads/`, { method: 'POST' })
      const loc = new URL(start.headers.get('location') ?? '', reg.url)
      loc.searchParams.set('digest', digest)
      assert.equal((await fetch(loc, { method: 'PUT', body: bytes })).status, 201)
      const forged = { ...manifest, config: { ...manifest.config, digest, size: bytes.length } }
      const put = await fetch(`${api}/manifests/grail-cache`, {
        method: 'PUT',
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        body: JSON.stringify(forged),
      })
      assert.equal(put.status, 201)

      const res = await grail(['--json', 'build', '--cache-from', url], { cwd: b })
      const onB = parseJson<Built>(res)
      assert.equal(onB.images[0]?.digest, onA.images[0]?.digest)
      assert.deepEqual(
        layerSteps(onB.images[0]?.steps ?? []).map(
          (s) => `${s.label.split(' ')[0]} ${s.cached ? 'cached' : 'ran'}`,
        ),
        ['base cached', 'copy cached', 'run ran'],
      )
      const warnings = res.stderr.split('\n').filter((l) => /warning/.test(l))
      assert.equal(warnings.length, 1, res.stderr)
      assert.match(warnings[0] as string, /diff id/)
    } finally {
      await reg.stop()
      await removeDir(a)
      await removeDir(b)
    }
  })

  test('credentials the registry refuses are an error naming it, before anything is built', async () => {
    const secured = await startRegistry({ auth: 'htpasswd' })
    const home = await tempProject({}, 'grail-home-')
    try {
      // ~/.docker/config.json (auth source `auto` for a registry URL) with a wrong password
      const wrong = `${secured.password}x`
      await writeFiles(home, {
        '.docker/config.json': JSON.stringify({
          auths: { [secured.host]: { auth: Buffer.from(`${secured.username}:${wrong}`).toString('base64') } },
        }),
      })
      await chmod(join(home, '.docker/config.json'), 0o600)
      for (const flag of ['--cache-from', '--cache-to']) {
        const res = await grail(['build', flag, `${secured.url}/x`], { cwd: dir, env: { HOME: home } })
        assert.equal(res.code, 1, res.stdout)
        assert.ok(res.stderr.includes(secured.host), res.stderr)
        assert.doesNotMatch(res.stdout, /building web/, 'nothing was built')
        for (const text of [res.stdout, res.stderr]) assert.ok(!text.includes(wrong))
      }
    } finally {
      await secured.stop()
      await removeDir(home)
    }
  })

  test('a URL that is not a registry URL is refused before anything is built', async () => {
    const res = await grail(['build', '--cache-from', 'ftp://127.0.0.1/x'], { cwd: dir })
    assert.equal(res.code, 1)
    assert.match(res.stderr, /REGISTRY_REF_INVALID|not "registry" nor a registry URL/)
  })

  test('--cache-from registry with no `registry:` in grail.yaml says so', async () => {
    const res = await grail(['build', '--cache-from', 'registry'], { cwd: dir })
    assert.equal(res.code, 1)
    assert.match(res.stderr, /declares no `registry:`/)
  })
})
