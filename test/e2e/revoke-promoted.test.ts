// Revocation in an environment that receives promotions (local provider): prod runs only what was
// promoted to it, so a revoked image there is replaced by the next `apply prod` with prod's newest
// promotion that is not revoked (under load, no failed request), never by a build that was not promoted;
// when every promotion is revoked, plan and apply stop with an error naming prod, the service and the
// image, and change nothing until a good release is promoted.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Plan } from '../../src/plan/index.js'
import { assertSteady, startLoad } from '../helpers/load.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

const spec = (staging: number, prod: number) => `project: revoke-promoted
${httpdImages()}services:
  web:
    image: web
    replicas: 1
    port: 8080
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
environments:
  staging:
    provider: local
    services:
      web: { publish: ${staging} }
  prod:
    provider: local
    services:
      web: { publish: ${prod}, replicas: 2 }
`

interface Status {
  instances: Array<{ id: string; release: number; image: string; health: string; digest: string }>
  releases: Array<{ number: number; imageDigest: string; status: string }>
}

describe('grail revoke in a promoted-to environment (local provider)', () => {
  let dir: string
  let prodUrl: string
  const run = (args: string[]) => grail(args, { cwd: dir })
  const status = async (env: string) => parseJson<Status>(await run(['--json', 'status', env]))
  const page = async () => (await (await fetch(prodUrl)).text()).trim()
  const release = async (page: string) => {
    await writeFile(join(dir, 'site/index.html'), `${page}\n`)
    const up = await run(['up', 'staging'])
    assert.equal(up.code, 0, up.stderr + up.stdout)
  }
  const promote = async () => {
    const res = await run(['promote', 'web', '--from', 'staging', '--to', 'prod'])
    assert.equal(res.code, 0, res.stderr + res.stdout)
  }

  before(async () => {
    const [staging, prod] = [await freePort(), await freePort()]
    prodUrl = `http://127.0.0.1:${prod}/index.html`
    dir = await busyboxProject({ 'grail.yaml': spec(staging, prod), 'site/index.html': 'v1\n' })
    await release('v1')
    await promote()
    await release('v2')
    await promote()
    assert.equal(await page(), 'v2')
  })
  after(async () => {
    await tearDown(dir, ['staging', 'prod'])
  })

  test('a revoked promotion is replaced by the next apply with the earlier promotion, under load with no failed request', async () => {
    const revoke = await run(['revoke', 'web@2', '--reason', 'CVE-2026-0002'])
    assert.equal(revoke.code, 0, revoke.stderr)
    const plan = await run(['plan', 'prod', '--detailed-exitcode'])
    assert.equal(plan.code, 2, plan.stderr + plan.stdout)
    assert.match(
      plan.stdout,
      /deploy +web +new release: the running image \w+ is revoked \(CVE-2026-0002\); image web v1 \(\w+\) of release #\d+ \(promoted from staging#1\) replaces it/,
    )
    const v1 = (await status('staging')).releases.find((r) => r.number === 1)?.imageDigest
    // an apply killed right after it recorded the replacement release: the next one undoes and redoes it
    const killed = await grail(['apply', 'prod'], { cwd: dir, env: { GRAIL_CRASH_AT: 'release-recorded' } })
    assert.notEqual(killed.code, 0, killed.stdout)
    assert.equal(await page(), 'v2', 'the killed apply changed no instance')
    const load = startLoad(prodUrl, { workers: 8 })
    const applied = await run(['apply', 'prod'])
    const report = await load.stop()
    assert.equal(applied.code, 0, applied.stderr + applied.stdout)
    assert.match(applied.stdout, /recovered: release web#5 undone/)
    assert.equal(report.failed, 0, report.errors.slice(0, 5).join('\n'))
    assertSteady(report)
    const prod = await status('prod')
    assert.equal(prod.instances.length, 2)
    assert.ok(
      prod.instances.every((i) => i.health === 'healthy' && i.digest === v1),
      JSON.stringify(prod.instances),
    )
    assert.equal(await page(), 'v1')
    assert.equal((await run(['plan', 'prod', '--detailed-exitcode'])).code, 0)
    // and a rollback to the revoked release is refused
    const back = await run(['rollback', 'web', '-e', 'prod', '4'])
    assert.equal(back.code, 1, back.stdout)
    assert.match(back.stderr, /prod: web: release #4 runs image web@2, which is revoked \(CVE-2026-0002\)/)
  })

  test('with every promotion revoked, plan and apply of prod fail naming prod, and a build that was not promoted never runs there', async () => {
    assert.equal((await run(['revoke', 'web@1', '--reason', 'CVE-2026-0001'])).code, 0)
    // staging still runs the revoked web v2: that is not promoted
    const refused = await run(['promote', 'web', '--from', 'staging', '--to', 'prod'])
    assert.equal(refused.code, 1, refused.stdout)
    assert.match(
      refused.stderr,
      /release staging#3 runs image web@2, which is revoked \(CVE-2026-0002\); it is not promoted to prod/,
    )
    await release('v3') // staging runs web v3; prod has never been given it
    for (const args of [
      ['plan', 'prod'],
      ['plan', 'prod', '--detailed-exitcode'],
      ['apply', 'prod'],
    ]) {
      const res = await run(args)
      assert.equal(res.code, 1, `${args.join(' ')}: ${res.stdout}${res.stderr}`)
      assert.match(
        res.stderr,
        /error: prod: service web runs image web@1 \(\w+\), which is revoked \(CVE-2026-0001\), and no release promoted to prod can replace it/,
      )
      assert.match(res.stderr, /hint: .*grail promote web --from staging --to prod.*grail unrevoke web@1/)
    }
    const json = await run(['--json', 'plan', 'prod'])
    assert.equal(json.code, 1)
    const p = JSON.parse(json.stdout) as Plan
    assert.deepEqual(
      p.blocked.map((b) => [b.service, `${b.image.name}@${b.image.version}`]),
      [['web', 'web@1']],
    )
    assert.deepEqual(p.actions, [])
    assert.equal(await page(), 'v1', 'apply changed nothing')
    // promoting the fixed build unblocks prod
    await promote()
    assert.equal(await page(), 'v3')
    const clean = await run(['plan', 'prod', '--detailed-exitcode'])
    assert.equal(clean.code, 0, clean.stderr + clean.stdout)
  })
})
