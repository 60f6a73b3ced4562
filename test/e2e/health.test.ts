// Health after the rollout: an instance whose health endpoint goes away is seen as unhealthy by `status`
// and `plan` (which probe it, not the record of its gate), and `apply` replaces it with a healthy one.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { runCommand } from '../../src/util/exec.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

interface Status {
  instances: Array<{ id: string; health: string; probe: { ok: boolean; detail: string } | null }>
}

// the health page is ignored by the drift scan, so only its health check can notice it is gone
const spec = (port: number) => `project: watched
${httpdImages()}services:
  web:
    image: web
    replicas: 2
    port: 8080
    publish: ${port}
    healthcheck: { http: /health.html, interval: 100ms, timeout: 500ms }
    drift: { ignore: ["/srv/www/health.html"] }
    rollout: { healthTimeout: 10s, drain: 200ms }
`

describe('health is watched after the rollout', () => {
  let dir: string
  let port: number
  let victim: string
  const status = async () => parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))

  before(async () => {
    port = await freePort()
    dir = await busyboxProject({
      'grail.yaml': spec(port),
      'site/index.html': 'hello\n',
      'site/health.html': 'ok\n',
    })
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
  })
  after(async () => {
    await tearDown(dir)
  })

  test('an instance whose health page is deleted shows as unhealthy in status', async () => {
    const before = await status()
    assert.equal(before.instances.length, 2)
    assert.ok(before.instances.every((i) => i.health === 'healthy' && i.probe?.detail === 'HTTP 200'))
    victim = before.instances[0]?.id ?? ''
    const rm = await runCommand(
      {
        file: 'runc',
        args: ['--root', join(dir, '.grail/runc'), 'exec', victim, 'rm', '/srv/www/health.html'],
      },
      { allowFailure: true },
    )
    assert.equal(rm.code, 0, rm.stderr.toString())

    const after = await status()
    const bad = after.instances.find((i) => i.id === victim)
    assert.equal(bad?.health, 'unhealthy')
    assert.deepEqual(bad?.probe, { ...bad?.probe, ok: false, detail: 'HTTP 404' })
    assert.ok(after.instances.filter((i) => i.id !== victim).every((i) => i.health === 'healthy'))
    const human = await grail(['status'], { cwd: dir })
    assert.match(human.stdout, new RegExp(`${victim} .*unhealthy \\(last probe: HTTP 404, \\d+s ago\\)`))
  })

  test('plan replaces it, naming what the probes saw', async () => {
    const plan = await grail(['plan', '--detailed-exitcode'], { cwd: dir })
    assert.equal(plan.code, 2, plan.stderr + plan.stdout)
    assert.match(plan.stdout, new RegExp(`replace +web ${victim} +unhealthy: HTTP 404, \\d+ probes in a row`))
    assert.doesNotMatch(plan.stdout, /drift/)
  })

  test('apply replaces it with a healthy instance and the plan is empty again', async () => {
    const res = await grail(['apply'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
    const s = await status()
    assert.equal(s.instances.length, 2)
    assert.ok(!s.instances.some((i) => i.id === victim), 'the unhealthy instance is gone')
    assert.ok(s.instances.every((i) => i.health === 'healthy'))
    const page = await fetch(`http://127.0.0.1:${port}/health.html`)
    assert.equal(page.status, 200)
    assert.equal((await page.text()).trim(), 'ok')
    const plan = await grail(['plan', '--detailed-exitcode'], { cwd: dir })
    assert.equal(plan.code, 0, plan.stdout)
  })
})
