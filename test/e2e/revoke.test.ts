// Revocation with the local provider: a revoked image's instances are replaced by the next apply, with
// --cascade also those running images built on it; builds refuse a revoked base; images shows status,
// reason and ancestry.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Plan } from '../../src/plan/index.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'

const spec = (pin = '') => `project: revoking
images:
  base:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site-base/ /srv/www
      - cmd: [/bin/sh, -c, "exec httpd -f -p $PORT -h /srv/www"]
  app:
    base: { image: base${pin} }
    steps:
      - copy: site-app/ /srv/www/app
services:
  plain:
    image: base
    port: 8080
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
  derived:
    image: app
    port: 8080
    healthcheck: { http: /app/index.html, interval: 100ms, timeout: 500ms }
`

interface Status {
  instances: Array<{ id: string; service: string; image: string; health: string }>
}
interface Image {
  name: string
  version: number
  status: string
  statusReason: string | null
}

describe('grail revoke / unrevoke (local provider)', () => {
  let dir: string
  const running = async () =>
    Object.fromEntries(
      parseJson<Status>(await grail(['--json', 'status'], { cwd: dir })).instances.map((i) => [
        i.service,
        i.image,
      ]),
    )
  const images = async () => parseJson<Image[]>(await grail(['--json', 'images'], { cwd: dir }))
  const plan = async () => parseJson<Plan>(await grail(['--json', 'plan'], { cwd: dir }))

  before(async () => {
    dir = await busyboxProject({
      'grail.yaml': spec(),
      'site-base/index.html': 'base 1\n',
      'site-app/index.html': 'app\n',
    })
    assert.equal((await grail(['up'], { cwd: dir })).code, 0)
    await writeFile(join(dir, 'site-base/index.html'), 'base 2\n')
    const res = await grail(['up'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.deepEqual(await running(), { plain: 'base v2', derived: 'app v2' })
  })
  after(async () => {
    await tearDown(dir)
  })

  test('revoking an image replaces the instances that run it, and only those', async () => {
    const res = await grail(['revoke', 'base@2', '--reason', 'CVE-2026-0001'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr)
    assert.match(res.stdout, /built on it and still active: app@2/)
    const p = await plan()
    assert.deepEqual(
      p.actions.map((a) => [a.kind, a.service]),
      [['deploy', 'plain']],
    )
    assert.match(p.actions[0]?.reason ?? '', /is revoked \(CVE-2026-0001\); image base v1/)
    const applied = await grail(['apply'], { cwd: dir })
    assert.equal(applied.code, 0, applied.stderr + applied.stdout)
    assert.deepEqual(await running(), { plain: 'base v1', derived: 'app v2' })
    const base2 = (await images()).find((i) => i.name === 'base' && i.version === 2)
    assert.equal(base2?.status, 'revoked')
    assert.equal(base2?.statusReason, 'CVE-2026-0001')
    const table = await grail(['images'], { cwd: dir })
    assert.match(table.stdout, /revoked: CVE-2026-0001/)
  })

  test('with --cascade, instances running images built on it are replaced too', async () => {
    const res = await grail(['revoke', 'base@2', '--reason', 'CVE-2026-0001', '--cascade'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr)
    assert.match(res.stdout, /revoked app@2/)
    const applied = await grail(['apply'], { cwd: dir })
    assert.equal(applied.code, 0, applied.stderr + applied.stdout)
    assert.deepEqual(await running(), { plain: 'base v1', derived: 'app v1' })
    assert.match(
      (await images()).find((i) => i.name === 'app' && i.version === 2)?.statusReason ?? '',
      /CVE-2026-0001 \(built on base@2\)/,
    )
  })

  test('a build refuses a revoked base; images --tree shows ancestry', async () => {
    await writeFile(join(dir, 'grail.yaml'), spec(', version: 2'))
    const res = await grail(['build', 'app'], { cwd: dir })
    assert.equal(res.code, 1)
    assert.match(res.stderr, /base base@2 is revoked/)
    await writeFile(join(dir, 'grail.yaml'), spec())
    const tree = await grail(['images', '--tree'], { cwd: dir })
    assert.equal(tree.code, 0, tree.stderr)
    assert.match(tree.stdout, /^base v1 .*\n[└├]─ app v1 /m)
    assert.match(tree.stdout, /^base v2 .*revoked.*\n[└├]─ app v2 /m)
  })

  test('unrevoke puts the versions back, and the next apply deploys them again', async () => {
    const res = await grail(['unrevoke', 'base@2', '--cascade'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr)
    assert.ok((await images()).every((i) => i.status === 'active'))
    const applied = await grail(['apply'], { cwd: dir })
    assert.equal(applied.code, 0, applied.stderr + applied.stdout)
    assert.deepEqual(await running(), { plain: 'base v2', derived: 'app v2' })
    // a new base version marks its children out of date, and a build rebuilds them after it
    await writeFile(join(dir, 'site-base/index.html'), 'base 3\n')
    assert.equal((await grail(['build', 'base'], { cwd: dir })).code, 0)
    const listed = await grail(['images'], { cwd: dir })
    assert.match(listed.stdout, /app +v2 .*out of date: built on base v2, v3 is newer/)
    const rebuilt = await grail(['build'], { cwd: dir })
    assert.match(rebuilt.stdout, /base v3 unchanged[\s\S]*built app v3/)
    const bad = await grail(['revoke', 'base@9', '--reason', 'x'], { cwd: dir })
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /no image base@9.*\n.*versions of base: v3, v2, v1/)
  })
})
