// Tampering with a shared, read-only image snapshot is drift of every instance on it: `drift`, `plan`
// and `verify` name the file, `drift --fix` replaces the instances on a snapshot unpacked again from the
// verified blob, and `down` + `up` never deploys the tampered file again.
import assert from 'node:assert/strict'
import { appendFile, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fetchWithRetry, freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

const spec = `project: tamper
${httpdImages()}services:
  web:
    image: web
    replicas: 2
    port: 8080
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
    # the shared snapshots are what instances without a user namespace mount, and each is reached
    # at its own loopback port, so the test can ask every instance what it serves
    userns: host
    network: host
`

interface Status {
  instances: Array<{ id: string; port?: number }>
}
interface Drift {
  drifted: string[]
  instances: Array<{ instance: string; runtime: Array<{ kind: string; detail: string }> }>
}

describe('a tampered shared snapshot', () => {
  let dir: string
  const snapshots = () => join(dir, '.grail', 'snapshots')
  /** The snapshot dir (relative to .grail) that holds the site, found as a user would. */
  async function siteSnapshot(): Promise<string> {
    for (const name of await readdir(snapshots())) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue
      const found = await readFile(join(snapshots(), name, 'srv/www/index.html'), 'utf8').catch(
        () => undefined,
      )
      if (found !== undefined) return name
    }
    throw new Error('no snapshot holds srv/www/index.html')
  }
  async function bodies(): Promise<string[]> {
    const status = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
    assert.equal(status.instances.length, 2, JSON.stringify(status))
    return Promise.all(
      status.instances.map((i) => fetchWithRetry(`http://127.0.0.1:${i.port}/index.html`, 10_000)),
    )
  }

  before(async () => {
    dir = await busyboxProject({ 'grail.yaml': spec, 'site/index.html': 'genuine\n' })
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
    assert.deepEqual(await bodies(), ['genuine\n', 'genuine\n'])
  })
  after(async () => {
    await tearDown(dir)
  })

  test('drift, plan and verify report it for every instance, naming the file; drift --fix restores it', async () => {
    const snap = await siteSnapshot()
    await appendFile(join(snapshots(), snap, 'srv/www/index.html'), 'tampered\n')
    // the attack works: both instances serve it
    assert.deepEqual(await bodies(), ['genuine\ntampered\n', 'genuine\ntampered\n'])

    const drift = parseJson<Drift>(await grail(['--json', 'drift'], { cwd: dir }))
    assert.equal(drift.drifted.length, 2, JSON.stringify(drift))
    for (const d of drift.instances) {
      const finding = d.runtime.find((r) => r.kind === 'snapshot')
      assert.ok(finding, JSON.stringify(d))
      assert.ok(finding.detail.includes(`snapshots/${snap}/srv/www/index.html`), finding.detail)
      assert.match(finding.detail, /content/)
    }
    const exit = await grail(['drift', '--detailed-exitcode'], { cwd: dir })
    assert.equal(exit.code, 2, exit.stderr + exit.stdout)
    const plan = await grail(['plan'], { cwd: dir })
    assert.equal((plan.stdout.match(/replace/g) ?? []).length, 2, plan.stdout)
    assert.ok(plan.stdout.includes(`snapshots/${snap}/srv/www/index.html`), plan.stdout)
    const verify = await grail(['verify'], { cwd: dir })
    assert.equal(verify.code, 1, verify.stderr + verify.stdout)
    assert.ok(verify.stdout.includes('srv/www/index.html'), verify.stdout)

    const fix = await grail(['drift', '--fix'], { cwd: dir })
    assert.equal(fix.code, 0, fix.stderr + fix.stdout)
    assert.deepEqual(await bodies(), ['genuine\n', 'genuine\n'])
    assert.equal(await readFile(join(snapshots(), snap, 'srv/www/index.html'), 'utf8'), 'genuine\n')
    const after = parseJson<Drift>(await grail(['--json', 'drift'], { cwd: dir }))
    assert.deepEqual(after.drifted, [])
    assert.equal((await grail(['verify'], { cwd: dir })).code, 0)
    // the damaged dir the old instances ran on goes with the next gc, now that they are gone
    assert.equal((await grail(['gc', '--grace', '0s'], { cwd: dir })).code, 0)
    assert.deepEqual(
      (await readdir(snapshots())).filter((n) => n.startsWith('.')),
      [],
    )
  })

  test('down and up after tampering deploys the genuine file', async () => {
    const snap = await siteSnapshot()
    assert.equal((await grail(['down'], { cwd: dir })).code, 0)
    await appendFile(join(snapshots(), snap, 'srv/www/index.html'), 'tampered again\n')
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
    assert.deepEqual(await bodies(), ['genuine\n', 'genuine\n'])
  })
})

// By default instances run in a user namespace: their lower dirs are copies of each layer with every
// owner shifted into the project's id range (.grail/shifted/<base>/<diff id>), and those copies are
// verified and repaired the same way.
const usernsSpec = (port: number) => `project: tamperns
${httpdImages()}services:
  web:
    image: web
    replicas: 2
    port: 8080
    publish: ${port}
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
`

describe('a tampered copy of a snapshot shifted into the user namespace', () => {
  let dir: string
  let url: string
  /** The shifted copy (relative to .grail) that holds the site, found as a user would. */
  async function siteCopy(): Promise<string> {
    const { base } = JSON.parse(await readFile(join(dir, '.grail', 'userns.json'), 'utf8')) as {
      base: number
    }
    const root = join(dir, '.grail', 'shifted', String(base))
    for (const name of await readdir(root)) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue
      const found = await readFile(join(root, name, 'srv/www/index.html'), 'utf8').catch(() => undefined)
      if (found !== undefined) return join('shifted', String(base), name)
    }
    throw new Error(`no copy in ${root} holds srv/www/index.html`)
  }
  /** What the proxy serves, asked often enough to reach both instances. */
  async function served(): Promise<string[]> {
    const out = new Set<string>()
    for (let i = 0; i < 6; i++) out.add(await fetchWithRetry(url, 10_000))
    return [...out]
  }

  before(async () => {
    const port = await freePort()
    url = `http://127.0.0.1:${port}/index.html`
    dir = await busyboxProject({ 'grail.yaml': usernsSpec(port), 'site/index.html': 'genuine\n' })
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
    assert.deepEqual(await served(), ['genuine\n'])
  })
  after(async () => {
    await tearDown(dir)
  })

  test('drift, plan and verify report it for every instance, naming the file; drift --fix restores it', async () => {
    const copy = await siteCopy()
    await appendFile(join(dir, '.grail', copy, 'srv/www/index.html'), 'tampered\n')
    // the attack works: the copy is what the instances run
    assert.deepEqual(await served(), ['genuine\ntampered\n'])

    const drift = parseJson<Drift>(await grail(['--json', 'drift'], { cwd: dir }))
    assert.equal(drift.drifted.length, 2, JSON.stringify(drift))
    for (const d of drift.instances) {
      const finding = d.runtime.find((r) => r.kind === 'snapshot')
      assert.ok(finding, JSON.stringify(d))
      assert.ok(finding.detail.includes(`${copy}/srv/www/index.html (content)`), finding.detail)
    }
    const plan = await grail(['plan', '--detailed-exitcode'], { cwd: dir })
    assert.equal(plan.code, 2, plan.stderr + plan.stdout)
    assert.equal((plan.stdout.match(/replace/g) ?? []).length, 2, plan.stdout)
    const verify = await grail(['verify'], { cwd: dir })
    assert.equal(verify.code, 1, verify.stderr + verify.stdout)
    assert.ok(
      verify.stdout.includes(`${copy}/srv/www/index.html`) || verify.stdout.includes('srv/www/index.html'),
      verify.stdout,
    )

    const fix = await grail(['drift', '--fix'], { cwd: dir })
    assert.equal(fix.code, 0, fix.stderr + fix.stdout)
    assert.deepEqual(await served(), ['genuine\n'])
    assert.equal(await readFile(join(dir, '.grail', copy, 'srv/www/index.html'), 'utf8'), 'genuine\n')
    const after = parseJson<Drift>(await grail(['--json', 'drift'], { cwd: dir }))
    assert.deepEqual(after.drifted, [], JSON.stringify(after))
    assert.equal((await grail(['verify'], { cwd: dir })).code, 0)
    // the damaged copy the old instances ran on goes with the next gc, now that they are gone
    assert.equal((await grail(['gc', '--grace', '0s'], { cwd: dir })).code, 0)
    const shifted = join(dir, '.grail', copy, '..')
    assert.deepEqual(
      (await readdir(shifted)).filter((n) => n.startsWith('.')),
      [],
    )
  })

  test('down and up after tampering deploys the genuine file', async () => {
    const copy = await siteCopy()
    assert.equal((await grail(['down'], { cwd: dir })).code, 0)
    await appendFile(join(dir, '.grail', copy, 'srv/www/index.html'), 'tampered again\n')
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
    assert.deepEqual(await served(), ['genuine\n'])
  })
})
