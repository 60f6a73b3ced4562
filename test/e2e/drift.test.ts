// Drift with the local provider: changes made inside a running instance by hand (runc exec, as an
// administrator would, without Grail) reported down to the file with a text diff, volumes and ignored
// paths left out; `drift --fix` replacing only the drifted instance under load; audited hotfixes excused
// until their TTL and replaced after it; capture into a new image and the spec; orphans and killed
// instances.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { DriftReport } from '../../src/drift/types.js'
import { homeAt } from '../../src/home.js'
import { compareManifests, imageFileManifest } from '../../src/oci/file-manifest.js'
import { openStore } from '../../src/oci/store.js'
import type { Plan } from '../../src/plan/index.js'
import { listEvents, listImages, openDb } from '../../src/state/index.js'
import { assertSteady, startLoad } from '../helpers/load.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, removeDir, tearDown, tempProject } from '../helpers/project.js'

const spec = (port: number) => `# the drift test project
project: drifty
images:
  web:
    base: { rootfs: ./rootfs.tar }
    steps:
      # the site
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, "exec httpd -f -p $PORT -h /srv/www"]
services:
  web:
    image: web
    replicas: 2
    port: 8080
    publish: ${port}
    env: { GREETING: hello }
    volumes: ["data:/data"]
    drift: { ignore: ["/tmp/**"] }
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
    rollout: { healthTimeout: 5s, drain: 300ms }
policies:
  hotfix: { maxTtl: 1h }
`

interface Status {
  instances: Array<{ id: string; pid: number | null; health: string; image: string }>
}

describe('grail drift / hotfix / capture (local provider)', () => {
  let dir: string
  let url: string
  const runc = (...args: string[]) =>
    execFileSync('runc', ['--root', join(dir, '.grail', 'runc'), ...args], { encoding: 'utf8' })
  /** Changes files inside an instance the way an administrator would: runc exec, no Grail involved. */
  const inside = (id: string, script: string) => runc('exec', id, '/bin/sh', '-c', script)
  const status = async () => parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
  const drift = async (...args: string[]) =>
    parseJson<DriftReport>(await grail(['--json', 'drift', ...args], { cwd: dir }))
  const plan = async () => parseJson<Plan>(await grail(['--json', 'plan'], { cwd: dir }))
  const ids = async () => (await status()).instances.map((i) => i.id).sort()
  const orphanBundle = () => join(dir, 'orphan-bundle')

  before(async () => {
    const port = await freePort()
    url = `http://127.0.0.1:${port}/index.html`
    dir = await busyboxProject({
      'grail.yaml': spec(port),
      'site/index.html': 'v1\nline two\nline three\n',
      'site/old.html': 'old\n',
      'site/same.html': 'same\n',
    })
    const res = await grail(['up'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
  })
  after(async () => {
    try {
      runc('delete', '--force', 'drifty-orphan-1')
    } catch {
      // not running: the test removed it, or never started it
    }
    await tearDown(dir)
  })

  test('a fresh deploy has no drift', async () => {
    const r = await drift()
    assert.equal(r.instances.length, 2)
    assert.deepEqual(r.drifted, [])
    assert.ok(r.instances.every((i) => i.files.length === 0 && i.runtime.length === 0))
  })

  test('one file changed, one added, one deleted by hand: exactly those three, with a diff; volume and ignored writes are not reported', async () => {
    const [target] = await ids()
    assert.ok(target)
    inside(
      target,
      [
        "busybox sed -i 's/^v1$/v1-hacked/' /srv/www/index.html",
        'echo new > /srv/www/new.html',
        'rm /srv/www/old.html',
        'echo data > /data/written-by-hand',
        'mkdir -p /tmp/cache && echo x > /tmp/cache/entry',
        'touch /srv/www/same.html',
      ].join(' && '),
    )
    const r = await drift()
    assert.deepEqual(r.drifted, [target])
    const d = r.instances.find((i) => i.instance === target)
    assert.ok(d)
    assert.deepEqual(
      d.files.map((f) => [f.kind, f.path, f.class]),
      [
        ['A', '/srv/www/new.html', 'unexplained'],
        ['C', '/srv/www/index.html', 'unexplained'],
        ['D', '/srv/www/old.html', 'unexplained'],
      ].sort((a, b) => (a[1] as string).localeCompare(b[1] as string)),
    )
    assert.equal(d.touched, 1, 'same.html was touched, not changed')
    const changed = d.files.find((f) => f.kind === 'C')
    assert.deepEqual(changed?.what, ['content'])
    assert.match(changed?.diff ?? '', /^-v1$/m)
    assert.match(changed?.diff ?? '', /^\+v1-hacked$/m)
    assert.match(changed?.diff ?? '', /^ line two$/m)
    // the ignored path is expected, not reported unless asked for
    const all = await drift('--all')
    const expected = all.instances
      .find((i) => i.instance === target)
      ?.files.filter((f) => f.class === 'expected')
    assert.ok(expected?.some((f) => f.path.startsWith('/tmp/cache')))
    assert.ok(!all.instances.some((i) => i.files.some((f) => f.path.startsWith('/data'))))
    // the human report shows the three, and plan names drift as the reason to replace
    const human = await grail(['drift'], { cwd: dir })
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /C \/srv\/www\/index\.html/)
    assert.match(human.stdout, /\+v1-hacked/)
    const p = await plan()
    assert.deepEqual(
      p.actions.map((x) => [x.kind, 'instance' in x ? x.instance : '']),
      [['replace', target]],
    )
    assert.match(p.actions[0]?.reason ?? '', /^drift: 3 files/)
    assert.equal((await grail(['drift', '--detailed-exitcode'], { cwd: dir })).code, 2)
  })

  test('drift --fix replaces only the drifted instance, with no failed request under load', async () => {
    const before = await ids()
    const drifted = (await drift()).drifted
    assert.equal(drifted.length, 1)
    const load = startLoad(url)
    const res = await grail(['drift', '--fix'], { cwd: dir })
    const report = await load.stop()
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.equal(report.failed, 0, report.errors.slice(0, 5).join('\n'))
    assertSteady(report)
    const now = await ids()
    assert.ok(!now.includes(drifted[0] as string), 'the drifted instance is gone')
    assert.deepEqual(
      now.filter((id) => before.includes(id)),
      before.filter((id) => id !== drifted[0]),
      'the other instance was left alone',
    )
    assert.equal(now.length, 2)
    assert.deepEqual((await drift()).drifted, [])
  })

  test('a hotfix is recorded with its diff, excused until its TTL, and replaced by the next apply after it', async () => {
    const [target, other] = await ids()
    assert.ok(target && other)
    // long enough for the checks within it on a busy machine; the test waits for its end below
    const ttlMs = 30_000
    let expiresAt = Number.NaN
    const res = await grail(
      [
        'hotfix',
        target,
        '--reason',
        'urgent typo',
        '--ttl',
        `${ttlMs / 1000}s`,
        '--',
        '/bin/sh',
        '-c',
        "busybox sed -i 's/line two/line 2/' /srv/www/index.html",
      ],
      { cwd: dir },
    )
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.match(res.stdout, /hotfix #\d+ on .*: exit 0, 1 file\(s\) changed/)
    const db = openDb(join(dir, '.grail', 'state.db'))
    try {
      const ev = listEvents(db, { subject: target }).find((e) => e.kind === 'hotfix.applied')
      assert.ok(ev, 'hotfix.applied is in the event log')
      expiresAt = Date.parse(String(ev.data.expiresAt))
      assert.ok(Number.isFinite(expiresAt), 'the event names when the hotfix expires')
      assert.equal(ev.data.reason, 'urgent typo')
      assert.deepEqual(ev.data.command, [
        '/bin/sh',
        '-c',
        "busybox sed -i 's/line two/line 2/' /srv/www/index.html",
      ])
      const changes = ev.data.changes as Array<{ kind: string; path: string; diff?: string }>
      assert.deepEqual(
        changes.map((c) => [c.kind, c.path]),
        [['C', '/srv/www/index.html']],
      )
      assert.match(changes[0]?.diff ?? '', /^\+line 2$/m)
      assert.ok(ev.actor.length > 0)
    } finally {
      db.close()
    }
    const during = await drift()
    assert.deepEqual(during.drifted, [])
    const f = during.instances.find((i) => i.instance === target)?.files
    assert.deepEqual(
      f?.map((x) => [x.kind, x.path, x.class]),
      [['C', '/srv/www/index.html', 'excused']],
    )
    assert.deepEqual((await plan()).actions, [])
    // a change the hotfix did not make is not excused by it
    inside(target, 'echo extra > /srv/www/extra.html')
    const mixed = (await drift()).instances.find((i) => i.instance === target)?.files
    assert.deepEqual(
      mixed?.map((x) => [x.path, x.class]),
      [
        ['/srv/www/extra.html', 'unexplained'],
        ['/srv/www/index.html', 'excused'],
      ],
    )
    inside(target, 'rm /srv/www/extra.html')
    // the TTL runs from when the hotfix was recorded (after its command started up), not from when the
    // test asked for it: on a busy machine that is more than a moment later
    await sleep(Math.max(0, expiresAt + 500 - Date.now()))
    const p = await plan()
    assert.deepEqual(
      p.actions.map((x) => [x.kind, 'instance' in x ? x.instance : '']),
      [['replace', target]],
    )
    assert.match(p.actions[0]?.reason ?? '', /hotfix #\d+ expired/)
    const applied = await grail(['apply'], { cwd: dir })
    assert.equal(applied.code, 0, applied.stderr + applied.stdout)
    const now = await ids()
    assert.ok(!now.includes(target) && now.includes(other))
  })

  test('a hotfix beyond the maximum TTL, or without a reason, is refused before it runs', async () => {
    const [target] = await ids()
    assert.ok(target)
    const long = await grail(['hotfix', target, '--reason', 'x', '--ttl', '2h', '--', 'true'], { cwd: dir })
    assert.equal(long.code, 1)
    assert.match(long.stderr, /policies\.hotfix\.maxTtl/)
    const bare = await grail(['hotfix', target, '--ttl', '1m', '--', 'true'], { cwd: dir })
    assert.equal(bare.code, 1)
    assert.match(bare.stderr, /needs a reason/)
    const bad = await grail(['hotfix', '../etc', '--reason', 'x', '--ttl', '1m', '--', 'true'], { cwd: dir })
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /not an instance id/)
  })

  test('capture makes a new image and spec steps; a fresh build has the same files, and rolling it out clears the drift', async () => {
    const [target] = await ids()
    assert.ok(target)
    inside(
      target,
      [
        "busybox sed -i 's/^line three$/line three, captured/' /srv/www/index.html",
        'echo secret-free > /srv/www/private.txt && busybox chmod 600 /srv/www/private.txt',
        'mkdir -p /srv/www/docs && echo doc > /srv/www/docs/readme.txt',
        'rm /srv/www/old.html',
      ].join(' && '),
    )
    // a directory deleted and made again (overlay: opaque) cannot become copy steps: refused, clearly
    const [, other] = await ids()
    assert.ok(other && other !== target)
    inside(other, 'busybox rm -rf /srv/www && mkdir /srv/www && echo new > /srv/www/index.html')
    const opaque = await grail(['capture', other], { cwd: dir })
    assert.equal(opaque.code, 1)
    assert.match(opaque.stderr, /\/srv\/www in .* was deleted and created again as a whole/)
    // a symlink left in captured/ is never followed out of the project
    const outside = await tempProject({})
    await mkdir(join(dir, 'captured', 'web'), { recursive: true })
    await symlink(outside, join(dir, 'captured', 'web', 'srv'))
    const refused = await grail(['capture', target], { cwd: dir })
    assert.equal(refused.code, 1)
    assert.match(
      refused.stderr,
      /cannot write captured file \/srv\/www\/.* a directory on its way is a symlink/,
    )
    assert.deepEqual(await readdir(outside), [])
    await rm(join(dir, 'captured'), { recursive: true })
    await removeDir(outside)
    const res = await grail(['--json', 'capture', target], { cwd: dir })
    const cap = parseJson<{
      image: { name: string; version: number; digest: string }
      parent: { digest: string }
      dir: string
      changes: Array<{ kind: string; path: string }>
    }>(res)
    assert.equal(cap.dir, 'captured/web')
    const text = await readFile(join(dir, 'grail.yaml'), 'utf8')
    assert.ok(text.startsWith('# the drift test project\n'), 'comments are kept')
    assert.match(text, /# the site\n/)
    assert.match(text, new RegExp(`# captured from instance ${target}`))
    assert.equal(
      await readFile(join(dir, 'captured/web/srv/www/index.html'), 'utf8'),
      'v1\nline two\nline three, captured\n',
    )
    const built = await grail(['--json', 'build'], { cwd: dir })
    const image = parseJson<{ images: Array<{ digest: string; version: number }> }>(built).images[0]
    assert.ok(image && image.version > cap.image.version)
    const home = homeAt(join(dir, '.grail'))
    const store = await openStore(home.oci, home.tmp)
    const a = await imageFileManifest(home, store, cap.image.digest as `sha256:${string}`)
    const b = await imageFileManifest(home, store, image.digest as `sha256:${string}`)
    assert.deepEqual(compareManifests(a, b), [])
    assert.ok(a.has('/srv/www/docs/readme.txt') && !a.has('/srv/www/old.html'))
    assert.equal(a.get('/srv/www/private.txt')?.mode, 0o600)
    // provenance: the captured version names its instance
    const db = openDb(home.db)
    try {
      const rec = listImages(db, 'web').find((i) => i.digest === cap.image.digest)
      assert.ok(rec, 'the captured version is in the catalog')
      assert.equal((rec.base as { instance?: string }).instance, target)
      assert.equal(rec?.parentDigest, cap.parent.digest)
    } finally {
      db.close()
    }
    const applied = await grail(['apply'], { cwd: dir })
    assert.equal(applied.code, 0, applied.stderr + applied.stdout)
    const after = await drift()
    assert.deepEqual(after.drifted, [])
    assert.ok(after.instances.every((i) => i.files.length === 0))
    assert.equal((await (await fetch(url)).text()).trim().split('\n').at(-1), 'line three, captured')
  })

  test('a labelled container started by hand is an orphan, an instance killed by hand is crashed, one restarted with another env has runtime drift, one removed is missing; apply fixes them', async () => {
    // an orphan: a runc container with Grail's labels that state does not know
    const bundle = orphanBundle()
    await mkdir(join(bundle, 'rootfs'), { recursive: true })
    execFileSync('tar', ['-xf', join(dir, 'rootfs.tar'), '-C', join(bundle, 'rootfs')])
    execFileSync('runc', ['spec', '--bundle', bundle])
    const cfg = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8'))
    cfg.process.terminal = false
    cfg.process.args = ['/bin/sleep', '600']
    cfg.annotations = {
      'dev.grail.instance': 'drifty-orphan-1',
      'dev.grail.project': 'drifty',
      'dev.grail.environment': 'local',
      'dev.grail.service': 'web',
      'dev.grail.release': '1',
    }
    await writeFile(join(bundle, 'config.json'), JSON.stringify(cfg))
    // detached, with no pipe of ours: the container would hold it open for as long as it runs
    execFileSync(
      'runc',
      ['--root', join(dir, '.grail', 'runc'), 'run', '--detach', '--bundle', bundle, 'drifty-orphan-1'],
      {
        stdio: 'ignore',
      },
    )
    // killed by hand: one instance's process gets SIGKILL
    const s = await status()
    const victim = s.instances[0]
    assert.ok(victim?.pid)
    process.kill(victim.pid, 'SIGKILL')
    // restarted by hand with another environment: runtime drift, seen in the live process
    const tampered = s.instances[1]
    assert.ok(tampered)
    const bundleDir = join(dir, '.grail', 'instances', tampered.id)
    runc('delete', '--force', tampered.id)
    const conf = JSON.parse(await readFile(join(bundleDir, 'config.json'), 'utf8'))
    conf.process.env = conf.process.env.map((e: string) =>
      e.startsWith('GREETING=') ? 'GREETING=tampered' : e,
    )
    await writeFile(join(bundleDir, 'config.json'), JSON.stringify(conf))
    execFileSync(
      'runc',
      ['--root', join(dir, '.grail', 'runc'), 'run', '--detach', '--bundle', bundleDir, tampered.id],
      {
        stdio: 'ignore',
      },
    )
    await sleep(300)
    const r = await drift()
    const env = r.instances.find((i) => i.instance === tampered.id)?.runtime
    assert.deepEqual(
      env?.map((f) => [f.kind, f.detail]),
      [['env', 'env: GREETING changed']],
    )
    assert.match(
      (await plan()).actions.find((x) => 'instance' in x && x.instance === tampered.id)?.reason ?? '',
      /^drift: env: GREETING changed/,
    )
    const orphan = r.instances.find((i) => i.instance === 'drifty-orphan-1')
    assert.deepEqual(
      orphan?.runtime.map((f) => f.kind),
      ['orphan'],
    )
    const killed = r.instances.find((i) => i.instance === victim.id)
    assert.ok(killed?.runtime.some((f) => f.kind === 'crashed' || f.kind === 'missing'))
    assert.ok(r.drifted.includes(victim.id) && r.drifted.includes('drifty-orphan-1'))
    const res = await grail(['apply'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.match(res.stdout, /orphan/)
    const now = await status()
    assert.equal(now.instances.length, 2)
    assert.ok(!now.instances.some((i) => i.id === victim.id || i.id === tampered.id))
    assert.ok(now.instances.every((i) => i.health === 'healthy'))
    assert.deepEqual((await drift()).drifted, [])
    assert.ok(!(await readdir(join(dir, '.grail', 'runc'))).includes('drifty-orphan-1'))
    // an instance whose container was removed by hand is missing, and replaced too
    const gone = now.instances[0]
    assert.ok(gone)
    runc('delete', '--force', gone.id)
    const missing = (await drift()).instances.find((i) => i.instance === gone.id)
    assert.deepEqual(
      missing?.runtime.map((f) => f.kind),
      ['missing'],
    )
    const again = await grail(['apply'], { cwd: dir })
    assert.equal(again.code, 0, again.stderr + again.stdout)
    const final = await status()
    assert.equal(final.instances.length, 2)
    assert.ok(
      !final.instances.some((i) => i.id === gone.id) && final.instances.every((i) => i.health === 'healthy'),
    )
  })
})
