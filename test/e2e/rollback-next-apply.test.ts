// What `grail rollback` says about the next apply, checked against what the next plan does: rollback pins
// nothing, so while the spec still builds the newer version the next apply deploys it again (and the
// rollback says so, loudly, with how to keep it); once the spec is reverted, the next apply keeps it.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { busyboxProject, grail, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

const SPEC = `project: rbnext
${httpdImages()}services:
  web:
    image: web
    port: 8080
    healthcheck: { http: /index.html, interval: 200ms }
    rollout: { drain: 200ms }
`

describe('rollback and the next apply', () => {
  let dir: string
  before(async () => {
    dir = await busyboxProject({ 'grail.yaml': SPEC, 'site/index.html': 'one\n' })
  })
  after(async () => tearDown(dir))

  test('the message says what the next plan does', async () => {
    assert.equal((await grail(['up'], { cwd: dir })).code, 0)
    await writeFile(join(dir, 'site/index.html'), 'two\n')
    const up2 = await grail(['up'], { cwd: dir })
    assert.equal(up2.code, 0, up2.stderr)

    const rb = await grail(['rollback', 'web'], { cwd: dir })
    assert.equal(rb.code, 0, rb.stderr)
    assert.match(rb.stdout, /web: release #1 active again/)
    assert.match(
      rb.stdout,
      /warning: the spec still deploys web v2: the next `grail apply` or `grail up` of local replaces release #1 again and undoes this rollback/,
    )
    assert.match(rb.stdout, /revert the change in git.*grail revoke/)
    // and that is what the next plan does
    const plan = await grail(['plan', '--detailed-exitcode'], { cwd: dir })
    assert.equal(plan.code, 2, plan.stdout)
    assert.match(plan.stdout, /deploy\s+web/)

    // reverted, the spec builds what release #1 runs: the rollback says the next apply keeps it
    await writeFile(join(dir, 'site/index.html'), 'one\n')
    const again = await grail(['rollback', 'web', '1'], { cwd: dir })
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /the spec deploys what release #1 runs: the next apply keeps it/)
    assert.doesNotMatch(again.stdout, /undoes/)
    const plan2 = await grail(['plan', '--detailed-exitcode'], { cwd: dir })
    assert.equal(plan2.code, 0, plan2.stdout)
    assert.match(plan2.stdout, /up to date/)
  })
})
