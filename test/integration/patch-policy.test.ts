// policies.patch without a build: findings from a file:// mirror of bookworm-updates (its real, signed
// InRelease and Packages.xz) against an image version whose recorded package is older; `security: true`
// acts on none of them (the suite is not the security archive), `security: false` reports each once.
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { parsePackages } from '../../src/build/debian-index.js'
import type { Digest } from '../../src/oci/digest.js'
import { runPatchPolicy } from '../../src/server/patch.js'
import { listEvents, recordImageVersion } from '../../src/state/index.js'
import { patchContext } from '../helpers/patch-context.js'
import { removeDir, tempProject } from '../helpers/project.js'

const UPSTREAM = 'http://deb.debian.org/debian/dists/bookworm-updates'

const spec = (dir: string, policy: string) => `project: patch-policy
images:
  os:
    base:
      debian: { suite: bookworm-updates, mirror: "file://${dir}/mirror" }
policies:
  patch: ${policy}
`

describe('policies.patch report, against a file:// mirror', () => {
  let dir: string
  let pkg: string
  let ctx: Awaited<ReturnType<typeof patchContext>>

  before(async () => {
    dir = await tempProject({}, 'grail-patch-policy-')
    const dists = join(dir, 'mirror', 'dists', 'bookworm-updates')
    await mkdir(join(dists, 'main', 'binary-amd64'), { recursive: true })
    const get = async (path: string) => Buffer.from(await (await fetch(`${UPSTREAM}/${path}`)).arrayBuffer())
    const xz = await get('main/binary-amd64/Packages.xz')
    await writeFile(join(dists, 'InRelease'), await get('InRelease'))
    await writeFile(join(dists, 'main', 'binary-amd64', 'Packages.xz'), xz)
    const { execFileSync } = await import('node:child_process')
    const first = [...parsePackages(execFileSync('xz', ['-dc'], { input: xz }).toString('utf8')).keys()][0]
    assert.ok(first, 'bookworm-updates lists no package')
    pkg = first
    await writeFile(join(dir, 'grail.yaml'), spec(dir, '{ action: report, security: true }'))
    ctx = await patchContext(dir)
    recordImageVersion(ctx.db, {
      name: 'os',
      digest: `sha256:${'1'.repeat(64)}` as Digest,
      configDigest: `sha256:${'2'.repeat(64)}` as Digest,
      buildKey: 'k1',
      parentDigest: null,
      base: ctx.project().images.os?.base,
      gitCommit: null,
      createdAt: new Date().toISOString(),
      size: 1,
      packages: [{ name: pkg, version: '0~0', architecture: 'amd64' }],
    })
  })
  after(async () => {
    ctx?.close()
    await removeDir(dir)
  })

  test('security only: an update from another suite is shown, not acted on', async () => {
    const outcome = await runPatchPolicy(ctx, Date.now())
    const update = outcome.report.images[0]?.updates[0]
    assert.equal(update?.package, pkg)
    assert.equal(update?.suite, 'bookworm-updates')
    assert.equal(update?.security, false)
    assert.deepEqual(outcome.reported, [])
    assert.equal(listEvents(ctx.db).filter((e) => e.kind === 'patch.outdated').length, 0)
  })

  test('every update: reported once, as patch.outdated of the version', async () => {
    await writeFile(join(dir, 'grail.yaml'), spec(dir, '{ action: report }'))
    await ctx.reload()
    const outcome = await runPatchPolicy(ctx, Date.now())
    assert.deepEqual(
      outcome.reported.map((r) => [r.image, r.version, r.updates.map((u) => u.package)]),
      [['os', 1, [pkg]]],
    )
    assert.deepEqual((await runPatchPolicy(ctx, Date.now())).reported, [])
    const events = listEvents(ctx.db).filter((e) => e.kind === 'patch.outdated')
    assert.deepEqual(
      events.map((e) => e.subject),
      ['os@1'],
    )
  })
})
