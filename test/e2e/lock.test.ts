// grail.lock: written by build, and `apply --locked` deploying exactly its digests (not the newest build),
// or failing with a clear message when the lock does not match the spec.
import assert from 'node:assert/strict'
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
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
    assert.equal(l.lockVersion, 2)
    assert.deepEqual(Object.keys(l.images.web ?? {}), ['digest', 'spec', 'parent', 'layers', 'packages'])
    assert.match(l.images.web?.spec ?? '', /^sha256:[0-9a-f]{64}$/)
    assert.ok((l.images.web?.layers.length ?? 0) >= 2)
  })

  test('a no-op build leaves grail.lock as it is: not rewritten, same inode and mtime', async () => {
    const before = await stat(join(dir, 'grail.lock'))
    await new Promise((r) => setTimeout(r, 20))
    await grail(['build'], { cwd: dir })
    const now = await stat(join(dir, 'grail.lock'))
    assert.equal(now.ino, before.ino, 'a rewrite renames a new file over it')
    assert.equal(now.mtimeMs, before.mtimeMs)
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

// Acceptance (issue 14, point 2): the lock is a function of the spec, its sources and the archive. Two
// clean checkouts, in other directories, on two state dirs (GRAIL_HOME), built at different seconds, one
// of them after an earlier build that gave its catalog other version numbers, write the same bytes.
describe('grail.lock is the same on every machine (local provider)', () => {
  const twinSpec = `project: twins
${httpdImages()}  tools:
    base: { image: web }
    steps:
      - run: echo tools > /etc/tools
services:
  web:
    image: tools
    replicas: 1
    port: 8080
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
`
  let root: string
  let source: string
  const checkout = async (name: string) => {
    const dir = join(root, name, 'src', 'twins')
    await mkdir(join(root, name, 'src'), { recursive: true })
    await cp(source, dir, { recursive: true })
    return dir
  }
  const homeOf = async (name: string) => {
    const home = join(root, name, 'state')
    await mkdir(home, { recursive: true })
    return { GRAIL_HOME: home }
  }
  interface Image {
    name: string
    version: number
    digest: string
    createdAt: string
  }
  const catalog = async (cwd: string, env: Record<string, string>) =>
    parseJson<Image[]>(await grail(['--json', 'images'], { cwd, env }))
  /** waits for the wall clock's second to move past `after` (an ISO time), so two builds differ in time */
  const nextSecond = async (after: string) => {
    const s = Math.floor(Date.parse(after) / 1000)
    while (Math.floor(Date.now() / 1000) <= s) await new Promise((r) => setTimeout(r, 50))
  }
  let a: string
  let b: string
  let envA: Record<string, string>
  let envB: Record<string, string>

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'grail-twins-'))
    source = await busyboxProject({ 'grail.yaml': twinSpec, 'site/index.html': 'same\n' })
    a = await checkout('alice')
    b = await checkout('ci-runner-7')
    envA = await homeOf('alice')
    envB = { ...(await homeOf('ci-runner-7')), TZ: 'Pacific/Auckland', LANG: 'fr_FR.UTF-8' }
  })
  after(async () => {
    await grail(['down'], { cwd: b, env: envB })
    await removeDir(root)
    await removeDir(source)
  })

  test('two checkouts on two state dirs, other catalog numbers, other seconds: byte-identical locks', async () => {
    const builtA = await grail(['build'], { cwd: a, env: envA })
    assert.equal(builtA.code, 0, builtA.stderr + builtA.stdout)
    const lockA = await readFile(join(a, 'grail.lock'), 'utf8')

    // the second machine has built another version before: its counters are ahead
    await writeFile(join(b, 'site/index.html'), 'an older page\n')
    assert.equal((await grail(['build'], { cwd: b, env: envB })).code, 0)
    await writeFile(join(b, 'site/index.html'), 'same\n')
    const atA = await catalog(a, envA)
    await nextSecond(atA.map((i) => i.createdAt).sort()[atA.length - 1] as string)
    const builtB = await grail(['build'], { cwd: b, env: envB, umask: '077' })
    assert.equal(builtB.code, 0, builtB.stderr + builtB.stdout)
    assert.match(builtB.stdout, /built web v2 /)

    assert.equal(await readFile(join(b, 'grail.lock'), 'utf8'), lockA)
    assert.ok(lockA.endsWith('}\n'))
    assert.doesNotMatch(lockA, new RegExp(`${root}|"version"|\\d{4}-\\d\\d-\\d\\dT`))
    // the same digests carry other numbers and build times on the two machines
    const atB = await catalog(b, envB)
    for (const name of ['web', 'tools']) {
      const x = atA.find((i) => i.name === name) as Image
      const y = atB.find((i) => i.name === name && i.digest === x.digest) as Image
      assert.ok(y, `${name} ${x.digest} is in both catalogs`)
      assert.deepEqual([x.version, y.version], [1, 2])
      assert.notEqual(Math.floor(Date.parse(x.createdAt) / 1000), Math.floor(Date.parse(y.createdAt) / 1000))
    }
  })

  test('apply --locked finds the locked digest by digest (here v2), also from a version-1 lock', async () => {
    // the other machine's lock, in the old format with its own version number: the number is ignored
    const l = JSON.parse(await readFile(join(a, 'grail.lock'), 'utf8')) as Lock
    const v1 = {
      ...l,
      lockVersion: 1,
      images: Object.fromEntries(Object.entries(l.images).map(([k, e]) => [k, { version: 1, ...e }])),
    }
    await writeFile(join(b, 'grail.lock'), JSON.stringify(v1, null, 2))
    const applied = await grail(['apply', '--locked'], { cwd: b, env: envB })
    assert.equal(applied.code, 0, applied.stderr + applied.stdout)
    const s = parseJson<Status>(await grail(['--json', 'status'], { cwd: b, env: envB }))
    assert.deepEqual(
      s.instances.map((i) => [i.image, i.digest]),
      [['tools v2', l.images.tools?.digest]],
    )
    // the next build writes it in the current format, and says so: the same bytes as the other machine's
    const rebuilt = await grail(['build'], { cwd: b, env: envB })
    assert.equal(rebuilt.code, 0, rebuilt.stderr)
    assert.match(
      rebuilt.stdout,
      /grail\.lock: rewritten in the current format \(no local version numbers\); commit it/,
    )
    assert.equal(await readFile(join(b, 'grail.lock'), 'utf8'), await readFile(join(a, 'grail.lock'), 'utf8'))
  })

  test('a locked digest this machine never built: apply --locked names the image and digest', async () => {
    const c = await checkout('fresh')
    await cp(join(a, 'grail.lock'), join(c, 'grail.lock'))
    const res = await grail(['apply', '--locked'], { cwd: c, env: await homeOf('fresh') })
    assert.equal(res.code, 1, res.stderr + res.stdout)
    const l = JSON.parse(await readFile(join(a, 'grail.lock'), 'utf8')) as Lock
    assert.match(
      res.stderr,
      new RegExp(`image tools ${l.images.tools?.digest} of grail\\.lock is not in this machine's catalog`),
    )
    assert.match(res.stderr, /grail build tools/)
  })

  test('a lock of a newer format is refused by build and apply --locked, and left as it is', async () => {
    const future = `${JSON.stringify({ lockVersion: 3, project: 'twins', images: {} }, null, 2)}\n`
    await writeFile(join(b, 'grail.lock'), future)
    for (const args of [['build'], ['apply', '--locked']]) {
      const res = await grail(args, { cwd: b, env: envB })
      assert.equal(res.code, 1, res.stderr + res.stdout)
      assert.match(
        res.stderr,
        /grail\.lock has lockVersion 3, a format newer than this Grail reads \(1 to 2\)/,
      )
      assert.match(res.stderr, /upgrade Grail/)
      assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace')
    }
    assert.equal(await readFile(join(b, 'grail.lock'), 'utf8'), future)
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

// Acceptance (issue 10, point 5): a grail.lock that cannot be read stops the build with the file named
// and a fix, and is left byte for byte as it was. Replacing it would drop the pins of every image the
// build did not build (here `docs`, when only `web` is built).
describe('an invalid grail.lock stops grail build and is left as it is', () => {
  let dir: string
  before(async () => {
    dir = await busyboxProject({
      'grail.yaml': `project: broken-lock
${httpdImages()}  docs:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/docs
`,
      'site/index.html': 'v1\n',
    })
  })
  after(() => removeDir(dir))

  test('truncated JSON, an unknown format version, a wrong type in an entry: exit 1, the file named, the lock untouched', async () => {
    const built = await grail(['build'], { cwd: dir })
    assert.equal(built.code, 0, built.stderr + built.stdout)
    const good = await readFile(join(dir, 'grail.lock'), 'utf8')
    const l = JSON.parse(good) as Lock
    assert.ok(l.images.web && l.images.docs)
    const cases: Array<[string, string, RegExp]> = [
      ['truncated', good.slice(0, good.length / 2), /grail\.lock(:\d+:\d+)?: not valid JSON/],
      ['unknown version', good.replace('"lockVersion": 2', '"lockVersion": "two"'), /unknown lock format/],
      [
        'wrong type',
        JSON.stringify({ ...l, images: { ...l.images, docs: { ...l.images.docs, layers: 'sha256:x' } } }),
        /images\.docs\.layers is not a list of digests/,
      ],
    ]
    // a source change, so the build has something to write into the lock
    await writeFile(join(dir, 'site/index.html'), 'v2\n')
    for (const [what, text, message] of cases) {
      await writeFile(join(dir, 'grail.lock'), text)
      for (const args of [['build'], ['build', 'web']]) {
        const res = await grail(args, { cwd: dir })
        assert.equal(res.code, 1, `${what}: ${res.stderr}${res.stdout}`)
        assert.match(res.stderr, new RegExp(`${join(dir, 'grail.lock')}`), what)
        assert.match(res.stderr, message, what)
        assert.match(res.stderr, /hint: restore it from git/, what)
        assert.doesNotMatch(res.stderr, /\n\s+at |internal error/, `${what}: no stack trace`)
        assert.doesNotMatch(res.stdout, /built web/, `${what}: nothing was built`)
        assert.equal(await readFile(join(dir, 'grail.lock'), 'utf8'), text, `${what}: the lock is untouched`)
      }
    }
    const json = await grail(['--json', 'build'], { cwd: dir })
    assert.equal(json.code, 1)
    assert.equal((JSON.parse(json.stderr) as { error: { code: string } }).error.code, 'LOCK_INVALID')
    // restored, the next build updates web's entry and keeps docs'
    await writeFile(join(dir, 'grail.lock'), good)
    const fixed = await grail(['build', 'web'], { cwd: dir })
    assert.equal(fixed.code, 0, fixed.stderr)
    const after = JSON.parse(await readFile(join(dir, 'grail.lock'), 'utf8')) as Lock
    assert.notEqual(after.images.web?.digest, l.images.web?.digest)
    assert.deepEqual(after.images.docs, l.images.docs)
  })
})
