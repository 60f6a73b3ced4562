// Promotion between environments with the local provider: the target runs the source's exact release
// (same image digest and config digest), nothing is built, and it keeps running what was promoted to it
// when newer builds reach the source.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Plan } from '../../src/plan/index.js'
import { listEvents, openDb } from '../../src/state/index.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

const spec = (staging: number, prod: number) => `project: promoting
${httpdImages()}services:
  web:
    image: web
    replicas: 2
    port: 8080
    env: { GREETING: hello }
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
environments:
  staging:
    provider: local
    services:
      web: { publish: ${staging} }
  prod:
    provider: local
    services:
      web: { publish: ${prod}, replicas: 3 }
`

interface Release {
  service: string
  number: number
  imageDigest: string
  configDigest: string
  status: string
}
interface Status {
  instances: Array<{ id: string; image: string; health: string; digest: string }>
  releases: Release[]
}

describe('grail promote (local provider)', () => {
  let dir: string
  let prodUrl: string
  const status = async (env: string) =>
    parseJson<Status>(await grail(['--json', 'status', env], { cwd: dir }))
  const active = async (env: string) => (await status(env)).releases.find((r) => r.status === 'active')
  const built = () => {
    const db = openDb(join(dir, '.grail', 'state.db'))
    try {
      return listEvents(db, { limit: 1000 }).filter((e) => e.kind === 'image.built').length
    } finally {
      db.close()
    }
  }

  before(async () => {
    const [staging, prod] = [await freePort(), await freePort()]
    prodUrl = `http://127.0.0.1:${prod}/index.html`
    dir = await busyboxProject({ 'grail.yaml': spec(staging, prod), 'site/index.html': 'v1\n' })
    const res = await grail(['up', 'staging'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
  })
  after(async () => {
    await tearDown(dir, ['staging', 'prod'])
  })

  test('promote runs the same image digest and config digest in the target, and builds nothing', async () => {
    const builds = built()
    const source = await active('staging')
    assert.ok(source)
    const res = await grail(['promote', 'web', '--from', 'staging', '--to', 'prod'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.match(res.stdout, /prod: web release #\d+ = staging#\d+ .* active/)
    const target = await active('prod')
    assert.equal(target?.imageDigest, source.imageDigest)
    assert.equal(target?.configDigest, source.configDigest)
    const prod = await status('prod')
    assert.equal(prod.instances.length, 3)
    assert.ok(prod.instances.every((i) => i.health === 'healthy' && i.digest === source.imageDigest))
    assert.equal(built(), builds, 'nothing was built')
    assert.equal((await (await fetch(prodUrl)).text()).trim(), 'v1')
    const again = await grail(['promote', 'web', '--from', 'staging', '--to', 'prod'], { cwd: dir })
    assert.match(again.stdout, /already runs staging#/)
  })

  test('a newer build reaches staging but not prod until it is promoted', async () => {
    await writeFile(join(dir, 'site/index.html'), 'v2\n')
    assert.equal((await grail(['up', 'staging'], { cwd: dir })).code, 0)
    const plan = parseJson<Plan>(await grail(['--json', 'plan', 'prod'], { cwd: dir }))
    assert.deepEqual(plan.actions, [], 'prod runs what was promoted to it')
    assert.equal((await (await fetch(prodUrl)).text()).trim(), 'v1')
    const res = await grail(['promote', 'web', '--from', 'staging', '--to', 'prod'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.equal((await active('prod'))?.imageDigest, (await active('staging'))?.imageDigest)
    assert.equal((await (await fetch(prodUrl)).text()).trim(), 'v2')
    const bad = await grail(['promote', 'web', '--from', 'staging', '--to', 'qa'], { cwd: dir })
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /no environment named "qa"/)
  })
})
