// The patch pipeline against the real Debian archive: an image bootstrapped with a package pinned to the
// version bookworm's main suite has, while bookworm-security has a newer one, is reported by
// `grail outdated` (security); policy `build` makes a new version with the newer package (and rebuilds
// the image built on it); policy `deploy: [staging]` applies staging and leaves prod alone.
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { debianSources, readArchive } from '../../src/build/debian-archive.js'
import { compareDebianVersions } from '../../src/build/debian-version.js'
import { resolveHome } from '../../src/home.js'
import type { Lock } from '../../src/lifecycle/lock.js'
import type { OutdatedReport } from '../../src/lifecycle/outdated.js'
import { runPatchPolicy } from '../../src/server/patch.js'
import { getImage, listEvents } from '../../src/state/index.js'
import { patchContext } from '../helpers/patch-context.js'
import { grail, parseJson, removeDir, tearDown, tempProject } from '../helpers/project.js'

/** Small packages with no dependencies that bookworm-security has had newer versions of. */
const CANDIDATES = ['kitty-terminfo', 'wireless-regdb', 'vim-haproxy', 'parted-doc', 'libgs-common']

/** A candidate whose main-suite version the security suite has a newer version of, as the archive is now. */
async function pickPackage(dir: string): Promise<{ name: string; old: string; newer: string }> {
  const suites = debianSources({
    kind: 'debian',
    suite: 'bookworm',
    variant: 'essential',
    include: [],
    components: ['main'],
  })
  const [main, , security] = await readArchive(suites, 'amd64', {
    home: resolveHome(dir),
    maxAgeMs: 3_600_000,
    now: Date.now(),
  })
  for (const name of CANDIDATES) {
    const old = main?.packages.get(name)
    const newer = security?.packages.get(name)
    if (old && newer && compareDebianVersions(newer, old) > 0) return { name, old, newer }
  }
  throw new Error(`none of ${CANDIDATES.join(', ')} has a newer version in bookworm-security now`)
}

const spec = (pin: string, policy: string) => `project: patching
images:
  os:
    base:
      debian: { suite: bookworm, variant: essential, include: [busybox, "${pin}"] }
  app:
    base: { image: os }
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, "exec busybox httpd -f -p $PORT -h /srv/www"]
services:
  web:
    image: app
    port: 8080
    healthcheck: { http: /index.html, interval: 100ms, timeout: 1s }
environments:
  staging: {}
  prod: {}
policies:
  patch: ${policy}
`

interface Release {
  service: string
  imageVersion: number
  imageDigest: string
  status: string
}

describe('patch pipeline (real Debian archive)', { timeout: 600_000 }, () => {
  let dir: string
  let pkg: { name: string; old: string; newer: string }
  let ctx: Awaited<ReturnType<typeof patchContext>>

  const outdated = async (...args: string[]) =>
    parseJson<OutdatedReport>(await grail(['--json', 'outdated', ...args], { cwd: dir }))
  const running = async (env: string) => {
    const s = parseJson<{ releases: Release[] }>(await grail(['--json', 'status', env], { cwd: dir }))
    return s.releases.find((r) => r.status === 'active' && r.service === 'web')
  }
  const usePolicy = async (policy: string) => {
    await writeFile(join(dir, 'grail.yaml'), spec(`${pkg.name}=${pkg.old}`, policy))
    await ctx.reload()
  }
  const events = (kind: string) =>
    listEvents(ctx.db, { limit: 1000 })
      .filter((e) => e.kind === kind)
      .reverse()

  before(async () => {
    dir = await tempProject({ 'site/index.html': 'patched?\n' }, 'grail-patch-')
    pkg = await pickPackage(dir)
    await writeFile(join(dir, 'grail.yaml'), spec(`${pkg.name}=${pkg.old}`, '{ action: report }'))
    const built = await grail(['build'], { cwd: dir })
    assert.equal(built.code, 0, built.stderr + built.stdout)
    for (const env of ['staging', 'prod']) {
      const res = await grail(['apply', env], { cwd: dir })
      assert.equal(res.code, 0, res.stderr + res.stdout)
    }
    ctx = await patchContext(dir)
  })
  after(async () => {
    ctx?.close()
    if (dir) await tearDown(dir, ['staging', 'prod']).catch(() => removeDir(dir))
  })

  test('grail outdated names the pinned package, its locked and newer version, and that it is a security update', async () => {
    const report = await outdated()
    const os = report.images.find((i) => i.image === 'os' && i.version === 1)
    const app = report.images.find((i) => i.image === 'app' && i.version === 1)
    assert.ok(os && app, JSON.stringify(report.images))
    assert.equal(os.archive, 'debian bookworm (amd64)')
    const update = os.updates.find((u) => u.package === pkg.name)
    assert.deepEqual(update && { ...update, architecture: undefined }, {
      package: pkg.name,
      architecture: undefined,
      locked: pkg.old,
      available: pkg.newer,
      suite: 'bookworm-security',
      security: true,
    })
    // the child has the packages of its base, and runs in both environments
    assert.ok(app.updates.some((u) => u.package === pkg.name && u.available === pkg.newer))
    assert.deepEqual(
      app.runningIn.map((r) => r.environment),
      ['prod', 'staging'],
    )
    assert.equal(app.baseOutdated, null)
    // bookworm-security's InRelease was read (and its signature checked) along with the others
    assert.deepEqual(
      report.archives.map((a) => a.suite),
      ['bookworm', 'bookworm-updates', 'bookworm-security'],
    )
    // only one image asked for
    assert.deepEqual(
      (await outdated('os')).images.map((i) => i.image),
      ['os'],
    )
    const unknown = await grail(['--json', 'outdated', 'nosuch'], { cwd: dir })
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /"code":"UNKNOWN_IMAGE".*images in this project: os, app/)
    const human = await grail(['outdated'], { cwd: dir })
    assert.equal(human.code, 0, human.stderr)
    assert.match(
      human.stdout,
      new RegExp(`os +v1 +${pkg.name} +${pkg.old.replace(/[+.]/g, '\\$&')} .*security`),
    )
  })

  test('policy report: one patch.outdated event per finding, not repeated on the next run', async () => {
    const first = await runPatchPolicy(ctx, Date.now())
    assert.deepEqual(first.built, [])
    assert.deepEqual(
      first.reported.map((r) => `${r.image}@${r.version}`),
      ['app@1', 'os@1'],
    )
    const found = events('patch.outdated').find((e) => e.subject === 'os@1')
    assert.ok(found)
    assert.ok(
      (found.data.updates as Array<{ package: string; available: string }>).some(
        (u) => u.package === pkg.name && u.available === pkg.newer,
      ),
    )
    const again = await runPatchPolicy(ctx, Date.now())
    assert.deepEqual(again.reported, [])
    assert.equal(events('patch.outdated').length, 2)
  })

  test('policy build: a new version with the newer package, and the image built on it rebuilt; nothing deployed', async () => {
    await usePolicy('{ action: build }')
    const outcome = await runPatchPolicy(ctx, Date.now())
    assert.deepEqual(
      outcome.built.map((b) => `${b.image}@${b.from}->${b.version}${b.unchanged ? ' unchanged' : ''}`),
      ['os@1->2', 'app@1->2'],
    )
    const os = outcome.built[0]
    assert.deepEqual(
      os?.cause.packages.find((p) => p.package === pkg.name),
      {
        package: pkg.name,
        locked: pkg.old,
        available: pkg.newer,
        security: true,
        suite: 'bookworm-security',
      },
    )
    assert.match(outcome.built[1]?.cause.base ?? '', /base image os rebuilt/)
    // the new version has the newer package; the spec still pins the old one
    const v2 = getImage(ctx.db, 'os', 2)
    assert.equal(v2?.packages.find((p) => p.name === pkg.name)?.version, pkg.newer)
    assert.match(await readFile(join(dir, 'grail.yaml'), 'utf8'), new RegExp(`${pkg.name}=`))
    const lock = JSON.parse(await readFile(join(dir, 'grail.lock'), 'utf8')) as Lock
    assert.ok(lock.images.os?.packages.some((p) => p.startsWith(`${pkg.name}=${pkg.newer}:`)))
    assert.equal(lock.images.app?.digest, outcome.built[1]?.digest)
    assert.deepEqual(
      events('patch.build').map((e) => e.subject),
      ['os@1', 'app@1'],
    )
    assert.deepEqual(
      events('patch.built').map((e) => `${e.subject}->${e.data.version}`),
      ['os@1->2', 'app@1->2'],
    )
    // the plan of each environment now builds nothing: the spec's build is the patched version
    const plan = parseJson<{ builds: unknown[] }>(await grail(['--json', 'plan', 'prod'], { cwd: dir }))
    assert.deepEqual(plan.builds, [])
    // nothing was deployed
    assert.equal((await running('staging'))?.imageVersion, 1)
    assert.equal((await running('prod'))?.imageVersion, 1)

    // what still runs is out of date twice over: its packages, and its base was rebuilt
    const report = await outdated()
    const app1 = report.images.find((i) => i.image === 'app' && i.version === 1)
    assert.match(app1?.baseOutdated?.cause ?? '', /base image os rebuilt: built on v1, v2 is newer/)
    const app2 = report.images.find((i) => i.image === 'app' && i.version === 2)
    assert.equal(app2?.newest, true)
    assert.equal(
      app2?.updates.some((u) => u.package === pkg.name),
      false,
    )

    // the next run has nothing to build
    const again = await runPatchPolicy(ctx, Date.now())
    assert.deepEqual(again.built, [])
    assert.equal(events('patch.build').length, 2)
  })

  test('policy deploy [staging], run by grail serve: staging runs the patched version, prod still runs the old one', async () => {
    await usePolicy('{ action: deploy, deploy: [staging] }')
    // the daemon itself: one pass of each environment's reconciler (prod's plan would deploy v2, which
    // the reconciler leaves to `grail apply`) and one run of the patch policy
    const served = await grail(['serve', '--once'], { cwd: dir })
    assert.equal(served.code, 0, served.stderr + served.stdout)
    assert.equal(events('patch.built').length, 2, 'nothing more was built')
    const deployed = events('patch.deployed')
    assert.equal(deployed.length, 1)
    assert.equal(deployed[0]?.subject, 'staging')
    assert.equal((await running('staging'))?.imageVersion, 2)
    assert.equal((await running('prod'))?.imageVersion, 1)
    const deploy = events('patch.deploy')
    assert.equal(deploy.length, 1)
    assert.equal(deploy[0]?.subject, 'staging')
    const cause = deploy[0]?.data.cause as { packages: Array<{ package: string }>; base: string }
    assert.ok(cause.packages.some((p) => p.package === pkg.name))
    assert.match(cause.base, /base image os rebuilt/)

    // the next run leaves both alone
    const again = await grail(['serve', '--once'], { cwd: dir })
    assert.equal(again.code, 0, again.stderr + again.stdout)
    assert.equal(events('patch.deploy').length, 1)
    assert.equal((await running('staging'))?.imageVersion, 2)
    assert.equal((await running('prod'))?.imageVersion, 1)
  })

  test('a run killed after a patch build was recorded is finished by the next: the lock and the event', async () => {
    // as a run killed between recording the version and writing grail.lock leaves it
    const lockFile = join(dir, 'grail.lock')
    const lock = JSON.parse(await readFile(lockFile, 'utf8')) as Lock
    const before = lock.images.os?.digest
    const stale = {
      ...lock,
      images: { ...lock.images, os: { ...lock.images.os, digest: 'sha256:'.padEnd(71, '0') } },
    }
    await writeFile(lockFile, `${JSON.stringify(stale, null, 2)}\n`)
    const { appendEvent } = await import('../../src/state/index.js')
    appendEvent(ctx.db, 'patch.build', 'os@1', { image: 'os', from: 1, cause: { packages: [], base: null } })
    const outcome = await runPatchPolicy(ctx, Date.now())
    assert.deepEqual(
      outcome.built.map((b) => `${b.image}@${b.from}->${b.version}`),
      ['os@1->2'],
    )
    const fixed = JSON.parse(await readFile(lockFile, 'utf8')) as Lock
    assert.equal(fixed.images.os?.digest, before)
    const last = events('patch.built').at(-1)
    assert.equal(last?.data.recovered, true)
    // and nothing is finished twice
    assert.deepEqual((await runPatchPolicy(ctx, Date.now())).built, [])
  })
})
