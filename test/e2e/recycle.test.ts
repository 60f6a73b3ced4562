// Routine recycling with the local provider: instances older than recycle.maxAge are replaced oldest
// first, one disruption budget at a time, through the normal health-gated rollout, with no failed request
// under load and never fewer healthy instances than the service's replicas.
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Plan } from '../../src/plan/index.js'
import { openDb } from '../../src/state/index.js'
import { assertSteady, startLoad } from '../helpers/load.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

const spec = (port: number) => `project: recycling
${httpdImages()}services:
  web:
    image: web
    replicas: 3
    port: 8080
    publish: ${port}
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
    rollout: { healthTimeout: 5s, drain: 300ms }
    recycle: { maxAge: 20s }
policies:
  disruptionBudget: { maxUnavailable: 1, minHealthy: 3 }
`

interface Status {
  instances: Array<{ id: string; health: string; createdAt: string }>
}

/**
 * Polls the state database while a command runs: the fewest healthy instances and the most instances that
 * existed at once (creating, starting or healthy).
 */
function watchInstances(dir: string): { stop: () => Promise<{ fewest: number; most: number }> } {
  let watching = true
  let fewest = Number.POSITIVE_INFINITY
  let most = 0
  const done = (async () => {
    const db = openDb(join(dir, '.grail', 'state.db'))
    try {
      while (watching) {
        const rows = db
          .prepare("SELECT phase FROM instances WHERE phase IN ('healthy', 'starting', 'creating')")
          .all() as Array<{ phase: string }>
        fewest = Math.min(fewest, rows.filter((r) => r.phase === 'healthy').length)
        most = Math.max(most, rows.length)
        await sleep(5)
      }
    } finally {
      db.close()
    }
  })()
  return {
    stop: async () => {
      watching = false
      await done
      return { fewest, most }
    },
  }
}

describe('grail recycle (local provider)', () => {
  let dir: string
  let url: string
  const status = async () => parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))

  before(async () => {
    const port = await freePort()
    url = `http://127.0.0.1:${port}/index.html`
    dir = await busyboxProject({ 'grail.yaml': spec(port), 'site/index.html': 'hello\n' })
    const res = await grail(['up'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
  })
  after(async () => {
    await tearDown(dir)
  })

  test('young instances are not due', async () => {
    const dry = await grail(['recycle', '--dry-run'], { cwd: dir })
    assert.equal(dry.code, 0, dry.stderr)
    assert.match(dry.stdout, /no instance is due/)
  })

  test('past maxAge, plan names the age and recycle replaces them oldest first, one at a time, under load with no failure', async () => {
    // until the youngest instance is past maxAge, counted from when it was made (up may be slow today)
    const youngest = Math.max(...(await status()).instances.map((i) => Date.parse(i.createdAt)))
    await sleep(Math.max(0, youngest + 20_500 - Date.now()))
    const before = (await status()).instances.sort((a, b) => a.createdAt.localeCompare(b.createdAt))
    const oldest = before.map((i) => i.id)
    const plan = parseJson<Plan>(await grail(['--json', 'plan'], { cwd: dir }))
    assert.deepEqual(
      plan.actions.map((a) => ('instance' in a ? a.instance : '')),
      oldest,
      'oldest first',
    )
    for (const a of plan.actions) assert.match(a.reason, /^age \d+s > maxAge 20s$/)
    const dry = await grail(['recycle', '--dry-run'], { cwd: dir })
    assert.match(dry.stdout, new RegExp(`due web ${oldest[0]}`))

    // watch healthy instances while recycling: never fewer than the 3 replicas (minHealthy 3)
    const watch = watchInstances(dir)
    const load = startLoad(url)
    const res = await grail(['recycle'], { cwd: dir })
    const report = await load.stop()
    const { fewest, most } = await watch.stop()
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.equal(report.failed, 0, report.errors.slice(0, 5).join('\n'))
    assertSteady(report)
    assert.ok(fewest >= 3, `healthy instances dropped to ${fewest}`)
    assert.ok(most <= 4, `at most one replacement at a time (saw ${most} instances)`)

    // replaced in order: the oldest instance was destroyed first
    const db = openDb(join(dir, '.grail', 'state.db'))
    try {
      const destroyed = (
        db.prepare("SELECT id FROM instances WHERE phase = 'destroyed' ORDER BY updated_at").all() as Array<{
          id: string
        }>
      ).map((r) => r.id)
      assert.deepEqual(destroyed, oldest)
    } finally {
      db.close()
    }
    const after = await status()
    assert.equal(after.instances.length, 3)
    assert.ok(after.instances.every((i) => i.health === 'healthy' && !oldest.includes(i.id)))
  })
})

describe('grail recycle with an exclusive volume', () => {
  let dir: string
  before(async () => {
    dir = await busyboxProject({
      'grail.yaml': `project: exclusive
images:
  db:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, "echo boot >> /data/boots; exec httpd -f -p $PORT -h /srv/www"]
services:
  db:
    image: db
    port: 8080
    volumes: [{ name: data, path: /data, exclusive: true }]
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
    recycle: { maxAge: 2s }
`,
      'site/index.html': 'db\n',
    })
    const res = await grail(['up'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
  })
  after(async () => {
    await tearDown(dir)
  })

  test('the old instance is gone before the new one starts, and the data stays', async () => {
    await sleep(2500)
    const watch = watchInstances(dir)
    const res = await grail(['recycle'], { cwd: dir })
    const { most } = await watch.stop()
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.match(res.stdout, /recycled db /)
    assert.equal(most, 1, 'never two instances on the exclusive volume')
    const boots = await readFile(
      join(dir, '.grail', 'volumes', 'exclusive', 'local', 'data', 'boots'),
      'utf8',
    )
    assert.equal(boots, 'boot\nboot\n')
  })
})
