// Which version runs: the one the spec builds now (its build key), not the newest. A reverted source file
// reverts the deployment; plan names the sources that changed before anything is built; gc keeps what
// grail.lock names; two `grail up` at once make one version of one digest and deploy it both.
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Lock } from '../../src/lifecycle/lock.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

const spec = (port: number, keepReleases = 1) => `project: versions
${httpdImages()}services:
  web:
    image: web
    replicas: 1
    port: 8080
    publish: ${port}
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
policies:
  gc: { keepVersions: 1, keepReleases: ${keepReleases}, keepDeployedWithin: 0s }
`

interface Status {
  instances: Array<{ image: string; health: string }>
}
interface Image {
  version: number
  digest: string
}
interface Gc {
  images: { collected: Array<{ version: number }> }
  kept: Array<{ image: string; why: string }>
}

async function served(port: number): Promise<string> {
  return (await (await fetch(`http://127.0.0.1:${port}/index.html`)).text()).trim()
}

describe('the version the spec builds is the one that runs (local provider)', () => {
  let dir: string
  let port: number
  const images = async () =>
    parseJson<Image[]>(await grail(['--json', 'images'], { cwd: dir })).sort((a, b) => a.version - b.version)
  const running = async () =>
    parseJson<Status>(await grail(['--json', 'status'], { cwd: dir })).instances.map((i) => i.image)
  // the lock names a digest; which version that is, is this machine's catalog's business
  const lockVersion = async () => {
    const digest = (JSON.parse(await readFile(join(dir, 'grail.lock'), 'utf8')) as Lock).images.web?.digest
    return (await images()).find((i) => i.digest === digest)?.version
  }
  const up = async () => {
    const res = await grail(['up'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
    return res
  }

  before(async () => {
    port = await freePort()
    dir = await busyboxProject({ 'grail.yaml': spec(port), 'site/index.html': 'A\n' })
    await up()
  })
  after(async () => {
    await tearDown(dir)
  })

  test('before any build, plan names the changed source and exits 2; apply refuses', async () => {
    await writeFile(join(dir, 'site/index.html'), 'B\n')
    const p = await grail(['plan', '--detailed-exitcode'], { cwd: dir })
    assert.equal(p.code, 2, p.stderr + p.stdout)
    assert.match(
      p.stdout,
      /web: sources changed since v1 \(site\/index\.html\): grail up builds and deploys it/,
    )
    assert.doesNotMatch(p.stdout, /up to date/)
    const applied = await grail(['apply'], { cwd: dir })
    assert.equal(applied.code, 1, applied.stderr + applied.stdout)
    assert.match(applied.stderr, /web: sources changed since v1 \(site\/index\.html\)/)
    assert.deepEqual(await running(), ['web v1'])
    assert.equal(await served(port), 'A')
  })

  test('A → B → A: the revert deploys v1 again, as build and grail.lock say', async () => {
    await up()
    assert.equal(await served(port), 'B')
    assert.deepEqual(await running(), ['web v2'])
    await writeFile(join(dir, 'site/index.html'), 'A\n')
    // v1 is the build of these sources: no build needed, plan deploys it
    const p = await grail(['plan'], { cwd: dir })
    assert.match(p.stdout, /deploy +web +new release: image web v1 /)
    const res = await up()
    assert.match(res.stdout, /web v1 unchanged/)
    assert.equal(await lockVersion(), 1)
    assert.equal(await served(port), 'A')
    assert.deepEqual(await running(), ['web v1'])
    const again = await grail(['plan', '--detailed-exitcode'], { cwd: dir })
    assert.equal(again.code, 0, again.stdout)
    assert.match(again.stdout, /up to date/)
    assert.deepEqual(
      (await images()).map((i) => i.version),
      [1, 2],
    )
  })

  test('gc with keepVersions: 1 keeps the version that runs and the one grail.lock names', async () => {
    // C is deployed (v3); then the source goes back to A and is only built: grail.lock names v1 again
    await writeFile(join(dir, 'site/index.html'), 'C\n')
    await up()
    assert.deepEqual(await running(), ['web v3'])
    await writeFile(join(dir, 'site/index.html'), 'A\n')
    const built = await grail(['build'], { cwd: dir })
    assert.match(built.stdout, /web v1 unchanged/)
    assert.equal(await lockVersion(), 1)
    const gc = parseJson<Gc>(await grail(['--json', 'gc', '--grace', '0s'], { cwd: dir }))
    assert.deepEqual(
      gc.images.collected.map((i) => i.version),
      [2],
    )
    assert.match(gc.kept.find((k) => k.image === 'web@1')?.why ?? '', /grail\.lock/)
    assert.deepEqual(
      (await images()).map((i) => i.version),
      [1, 3],
    )
    // what the lock names can still be deployed
    const res = await up()
    assert.match(res.stdout, /web v1 unchanged/)
    assert.equal(await served(port), 'A')
    assert.deepEqual(await running(), ['web v1'])
  })
})

describe('two grail up at once (local provider)', () => {
  let dir: string
  let port: number

  before(async () => {
    port = await freePort()
    dir = await busyboxProject({ 'grail.yaml': spec(port, 2), 'site/index.html': 'one\n' })
  })
  after(async () => {
    await tearDown(dir)
  })

  const versionOf = (stdout: string): string | undefined =>
    /(?:built web (v\d+)|web (v\d+) unchanged)/.exec(stdout)?.slice(1).find(Boolean)

  test('they make one version, and both deploy the version they print', async () => {
    const [a, b] = await Promise.all([grail(['up'], { cwd: dir }), grail(['up'], { cwd: dir })])
    assert.equal(a.code, 0, a.stderr + a.stdout)
    assert.equal(b.code, 0, b.stderr + b.stdout)
    assert.equal(versionOf(a.stdout), 'v1', a.stdout)
    assert.equal(versionOf(b.stdout), 'v1', b.stdout)
    const images = parseJson<Image[]>(await grail(['--json', 'images'], { cwd: dir }))
    assert.deepEqual(
      images.map((i) => i.version),
      [1],
    )
    const status = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
    assert.deepEqual(
      status.instances.map((i) => [i.image, i.health]),
      [['web v1', 'healthy']],
    )
    assert.equal(await served(port), 'one')
  })

  test('two builds of a changed source make one new version of one digest', async () => {
    await writeFile(join(dir, 'site/index.html'), 'two\n')
    const runs = await Promise.all([
      grail(['--json', 'build'], { cwd: dir }),
      grail(['--json', 'build'], { cwd: dir }),
      grail(['--json', 'build'], { cwd: dir }),
    ])
    const built = runs.map((r) => parseJson<{ images: Image[] }>(r).images[0])
    assert.deepEqual(
      built.map((i) => i?.version),
      [2, 2, 2],
    )
    assert.equal(new Set(built.map((i) => i?.digest)).size, 1)
    const images = parseJson<Image[]>(await grail(['--json', 'images'], { cwd: dir }))
    assert.deepEqual(images.map((i) => i.version).sort(), [1, 2])
  })
})
