// `grail apply` killed with SIGKILL at each named point of a rollout: the next apply converges (3 healthy
// instances of the newest release, serving the new page), with no orphan container, no leaked mount and
// no lost volume data.
import assert from 'node:assert/strict'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { CRASH_POINTS } from '../../src/util/crash-points.js'
import { runCommand } from '../../src/util/exec.js'
import { mountsUnder } from '../../src/util/mounts.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'

const spec = (port: number) => `project: crashy
images:
  web:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, "echo boot >> /data/boots.txt; exec httpd -f -p $PORT -h /srv/www"]
services:
  web:
    image: web
    replicas: 3
    port: 8080
    publish: ${port}
    volumes: ["data:/data"]
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
    rollout: { healthTimeout: 5s, drain: 200ms }
`

describe('apply killed at every crash point converges on the next apply', () => {
  let dir: string
  let port: number
  before(async () => {
    port = await freePort()
    dir = await busyboxProject({ 'grail.yaml': spec(port), 'site/index.html': 'v0\n' })
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr)
  })
  after(async () => {
    await tearDown(dir)
  })

  const boots = async () =>
    (await readFile(join(dir, '.grail/volumes/crashy/local/data/boots.txt'), 'utf8'))
      .split('\n')
      .filter(Boolean).length

  for (const [i, point] of CRASH_POINTS.entries()) {
    test(`killed at ${point}`, async () => {
      const bootsBefore = await boots()
      await writeFile(join(dir, 'site/index.html'), `v${i + 1}\n`)
      const killed = await grail(['up'], { cwd: dir, env: { GRAIL_CRASH_AT: point } })
      assert.equal(killed.code, -1, `the apply was killed at ${point}: ${killed.stdout}${killed.stderr}`)

      const res = await grail(['apply'], { cwd: dir })
      assert.equal(res.code, 0, res.stderr + res.stdout)
      const plan = await grail(['plan', '--detailed-exitcode'], { cwd: dir })
      assert.equal(plan.code, 0, `converged: ${plan.stdout}`)

      const status = parseJson<{ instances: Array<{ id: string; health: string; release: number }> }>(
        await grail(['--json', 'status'], { cwd: dir }),
      )
      assert.equal(status.instances.length, 3)
      assert.ok(status.instances.every((s) => s.health === 'healthy'))
      assert.equal(new Set(status.instances.map((s) => s.release)).size, 1)
      assert.equal((await (await fetch(`http://127.0.0.1:${port}/index.html`)).text()).trim(), `v${i + 1}`)

      const ids = status.instances.map((s) => s.id).sort()
      assert.deepEqual((await readdir(join(dir, '.grail/instances'))).sort(), ids, 'no orphan instance dirs')
      const runc = await runCommand({
        file: 'runc',
        args: ['--root', join(dir, '.grail/runc'), 'list', '--quiet'],
      })
      assert.deepEqual(runc.stdout.toString().split('\n').filter(Boolean).sort(), ids, 'no orphan containers')
      const mounts = await mountsUnder(join(dir, '.grail'))
      assert.ok(
        mounts.every((m) => ids.some((id) => m.startsWith(join(dir, '.grail/instances', id)))),
        mounts.join('\n'),
      )
      assert.ok((await boots()) >= bootsBefore, 'volume data is never lost')
    })
  }
})
