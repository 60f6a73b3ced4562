// grail.lock: written by build, and `apply --locked` deploying exactly its digests (not the newest build),
// or failing with a clear message when the lock does not match the spec.
import assert from 'node:assert/strict'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Lock } from '../../src/lifecycle/lock.js'
import { busyboxProject, grail, parseJson, removeDir, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

const spec = (steps: string[] = []) => `project: locking
${httpdImages(steps)}services:
  web:
    image: web
    replicas: 2
    port: 8080
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
`

interface Status {
  instances: Array<{ image: string; digest: string; health: string }>
}

describe('grail.lock and apply --locked (local provider)', () => {
  let dir: string
  let first: string
  const lock = async () => JSON.parse(await readFile(join(dir, 'grail.lock'), 'utf8')) as Lock

  before(async () => {
    dir = await busyboxProject({ 'grail.yaml': spec(), 'site/index.html': 'v1\n' })
  })
  after(async () => {
    await tearDown(dir)
  })

  test('build writes grail.lock with the digest, layers and spec digest of each image', async () => {
    const built = parseJson<{ images: Array<{ digest: string }> }>(
      await grail(['--json', 'build'], { cwd: dir }),
    )
    first = built.images[0]?.digest ?? ''
    const l = await lock()
    assert.equal(l.project, 'locking')
    assert.equal(l.images.web?.digest, first)
    assert.equal(l.images.web?.version, 1)
    assert.match(l.images.web?.spec ?? '', /^sha256:[0-9a-f]{64}$/)
    assert.ok((l.images.web?.layers.length ?? 0) >= 2)
  })

  test('apply --locked deploys exactly the locked digest, not the newest build', async () => {
    const v1lock = await readFile(join(dir, 'grail.lock'), 'utf8')
    await writeFile(join(dir, 'site/index.html'), 'v2\n')
    const res = await grail(['build'], { cwd: dir })
    assert.match(res.stdout, /grail\.lock: web updated/)
    assert.notEqual((await lock()).images.web?.digest, first)
    await writeFile(join(dir, 'grail.lock'), v1lock)
    const applied = await grail(['apply', '--locked'], { cwd: dir })
    assert.equal(applied.code, 0, applied.stderr + applied.stdout)
    const s = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
    assert.equal(s.instances.length, 2)
    assert.ok(s.instances.every((i) => i.digest === first && i.image === 'web v1' && i.health === 'healthy'))
    // a plain apply goes to the newest build
    const plan = await grail(['plan'], { cwd: dir })
    assert.match(plan.stdout, /image web v2/)
  })

  test('a lock that does not match the spec fails with a clear message, and so does a missing one', async () => {
    await writeFile(join(dir, 'grail.yaml'), spec(['env: { MODE: new }']))
    const res = await grail(['apply', '--locked'], { cwd: dir })
    assert.equal(res.code, 1)
    assert.match(res.stderr, /grail\.lock does not match grail\.yaml: image web is defined differently/)
    assert.match(res.stderr, /run `grail build` to update grail\.lock/)
    assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace')
    await rm(join(dir, 'grail.lock'))
    const missing = await grail(['apply', '--locked'], { cwd: dir })
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /grail\.lock does not exist/)
    const s = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
    assert.ok(
      s.instances.every((i) => i.digest === first),
      'nothing was deployed by the failed applies',
    )
  })
})

describe('grail build --refresh', () => {
  let dir: string
  before(async () => {
    dir = await busyboxProject({
      // the run step stands for what a refresh re-resolves (apt against a moving mirror): its result changes
      'grail.yaml': `project: refreshing
images:
  stamped:
    base: { rootfs: ./rootfs.tar }
    steps:
      - run: cat /proc/sys/kernel/random/uuid > /etc/stamp
  fixed:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
`,
      'site/index.html': 'same\n',
    })
  })
  after(() => removeDir(dir))

  test('runs every step again, reports which images changed, and the next plain build reuses the result', async () => {
    assert.equal((await grail(['build'], { cwd: dir })).code, 0)
    const before = await readFile(join(dir, 'grail.lock'), 'utf8')
    const plain = await grail(['build'], { cwd: dir })
    assert.match(plain.stdout, /stamped v1 unchanged/, 'a plain build reuses the cached step')
    const res = await grail(['build', '--refresh'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.match(res.stdout, /refreshed: 1 image\(s\) changed: stamped v2/)
    assert.match(res.stdout, /fixed v1 unchanged/)
    assert.match(res.stdout, /grail\.lock: stamped updated/)
    assert.notEqual(await readFile(join(dir, 'grail.lock'), 'utf8'), before)
    const after = await grail(['build'], { cwd: dir })
    assert.match(after.stdout, /stamped v2 unchanged/, 'the refreshed layers are what the cache holds now')
  })
})
