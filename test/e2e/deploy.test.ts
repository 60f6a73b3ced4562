// Deploy by replacement with the local provider (runc) behind the supervised proxy: an idle gap past
// busybox httpd's own 60 s timeout, rolling, blue-green and config-only releases under steady load with 0
// failed requests, automatic rollback on a failed health gate, volumes that survive replacement, the apply
// lock, and `grail down`.
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { listEvents, openDb } from '../../src/state/index.js'
import { assertSteady, startLoad } from '../helpers/load.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'

interface Status {
  instances: Array<{
    id: string
    service: string
    release: number
    image: string
    health: string
    pid: number | null
  }>
  releases: Array<{ number: number; status: string; reason: string | null }>
}

const spec = (o: {
  port: number
  strategy?: string
  health?: string
  env?: string
  breakAfter?: boolean
}) => `project: demo
images:
  web:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, "echo boot >> /data/boots.txt; ${o.breakAfter ? '(sleep 1; rm /srv/www/index.html) & ' : ''}exec httpd -f -p $PORT -h /srv/www"]
services:
  web:
    image: web
    replicas: 3
    port: 8080
    publish: ${o.port}
    env: { GREETING: "${o.env ?? 'hello'}" }
    volumes: ["data:/data"]
    healthcheck: { http: ${o.health ?? '/index.html'}, interval: 100ms, timeout: 500ms }
    rollout: { strategy: ${o.strategy ?? 'rolling'}, healthTimeout: 3s, drain: 500ms${o.strategy === 'canary' ? ', canary: { instances: 1 }, bake: 2s' : ''} }
`

describe('grail up / apply / rollback / down (local provider)', () => {
  let dir: string
  let port: number
  let url: string
  const set = async (o: Omit<Parameters<typeof spec>[0], 'port'>, page?: string) => {
    await writeFile(join(dir, 'grail.yaml'), spec({ port, ...o }))
    if (page) await writeFile(join(dir, 'site/index.html'), `${page}\n`)
  }
  const status = async () => parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))

  before(async () => {
    port = await freePort()
    url = `http://127.0.0.1:${port}/index.html`
    dir = await busyboxProject({ 'grail.yaml': spec({ port }), 'site/index.html': 'v1\n' })
  })
  after(async () => {
    await tearDown(dir)
  })

  test('grail up builds, deploys 3 healthy instances behind the proxy and prints the URL', async () => {
    const res = await grail(['up'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.ok(res.stdout.includes(`http://127.0.0.1:${port}/`))
    assert.equal((await (await fetch(url)).text()).trim(), 'v1')
    const s = await status()
    assert.equal(s.instances.length, 3)
    assert.ok(
      s.instances.every((i) => i.health === 'healthy' && i.release === 1 && i.image === 'web v1' && i.pid),
    )
    const logs = await grail(['logs', s.instances[0]?.id ?? ''], { cwd: dir })
    assert.equal(logs.code, 0, logs.stderr)
  })

  test('after an idle gap longer than busybox httpd waits for a request (60 s), every request gets 200', async (t) => {
    const sendSix = async () => {
      const statuses: string[] = []
      for (let i = 0; i < 6; i++) {
        const res = await fetch(url, { signal: AbortSignal.timeout(5000) })
        statuses.push(`${res.status} ${(await res.text()).trim()}`)
      }
      return statuses
    }
    assert.deepEqual(await sendSix(), Array(6).fill('200 v1'))
    // each backend now has a connection opened ahead of its next request; httpd answers such a
    // connection with "408 Request Timeout" after 60 s and closes it
    await sleep(65_000)
    assert.deepEqual(await sendSix(), Array(6).fill('200 v1'), 'no stale 408 is forwarded')
    const load = startLoad(url)
    await sleep(2000)
    const report = await load.stop()
    t.diagnostic(`load after the gap: ${report.ok} ok, ${report.failed} failed`)
    assert.equal(report.failed, 0, report.errors.slice(0, 5).join('\n'))
  })

  for (const [strategy, page] of [
    ['rolling', 'v2'],
    ['blue-green', 'v3'],
  ] as const) {
    test(`a ${strategy} update under load fails no request, and then only the new version answers`, async () => {
      await set({ strategy }, page)
      const load = startLoad(url)
      const res = await grail(['up'], { cwd: dir })
      const report = await load.stop()
      assert.equal(res.code, 0, res.stderr + res.stdout)
      assert.equal(report.failed, 0, report.errors.slice(0, 5).join('\n'))
      assertSteady(report)
      const after = startLoad(url, { workers: 4 })
      const tail = await after.stop()
      assert.ok(tail.bodies.length > 0 && tail.bodies.every((b) => b === page))
    })
  }

  test('a config-only change is a new release of the same image, rolled out with no failed request', async () => {
    const before = await status()
    await set({ strategy: 'rolling', env: 'bonjour' })
    const load = startLoad(url)
    const res = await grail(['up'], { cwd: dir })
    const report = await load.stop()
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.match(res.stdout, /new release: config changed/)
    assert.match(res.stdout, /web v3 unchanged/, 'nothing was rebuilt')
    assert.equal(report.failed, 0, report.errors.slice(0, 5).join('\n'))
    const s = await status()
    assert.ok(
      s.instances.every(
        (i) =>
          i.image === before.instances[0]?.image && i.release === (before.instances[0]?.release ?? 0) + 1,
      ),
    )
  })

  test('a release whose health check fails rolls back and the old release keeps serving', async () => {
    const before = await status()
    await set({ strategy: 'rolling', health: '/missing.html', env: 'broken' })
    const load = startLoad(url)
    const res = await grail(['up'], { cwd: dir })
    const report = await load.stop()
    assert.equal(res.code, 1)
    assert.match(
      res.stderr,
      /rolled back: health check failed on web-r\d+-\w+: not healthy within 3000 ms \(last probe: HTTP 404\)/,
    )
    assert.equal(report.failed, 0, report.errors.slice(0, 5).join('\n'))
    const s = await status()
    assert.deepEqual(
      s.instances.map((i) => i.id).sort(),
      before.instances.map((i) => i.id).sort(),
      'the old instances are untouched',
    )
    const rolled = s.releases.find((r) => r.status === 'rolled-back')
    assert.match(rolled?.reason ?? '', /health check failed/)
    const human = await grail(['status'], { cwd: dir })
    assert.match(human.stdout, /release web#\d+ \(\w+\) rolled-back: health check failed/)
    const db = openDb(join(dir, '.grail/state.db'))
    try {
      const events = listEvents(db).map((e) => `${e.kind} ${String(e.data.reason ?? '')}`)
      assert.ok(
        events.some((e) => /^release\.rolled-back health check failed on web-r\d+-\w+/.test(e)),
        events.join('\n'),
      )
    } finally {
      db.close()
    }
  })

  test('data in a declared volume survives every replacement', async () => {
    // every instance start appends one line: 3 for the first deploy, 3 per completed rollout after it
    const boots = await readFile(join(dir, '.grail/volumes/demo/local/data/boots.txt'), 'utf8')
    assert.ok(boots.split('\n').filter(Boolean).length >= 12, boots)
  })

  test('a second apply while one runs fails at once, naming the holder', async () => {
    await set({ strategy: 'rolling', env: 'slow' })
    const first = grail(['apply'], { cwd: dir })
    const db = openDb(join(dir, '.grail/state.db'))
    let held = false
    try {
      for (let i = 0; i < 200 && !held; i++) {
        held = db.prepare('SELECT 1 FROM locks').get() !== undefined
        if (!held) await sleep(25)
      }
    } finally {
      db.close()
    }
    if (!held) assert.fail(`the first apply never held the lock: ${JSON.stringify(await first)}`)
    const second = await grail(['apply'], { cwd: dir })
    assert.equal(second.code, 1)
    assert.match(second.stderr, /another apply is running: held by \S+ \(pid \d+ on /)
    assert.equal((await first).code, 0)
  })

  test('a canary shares traffic for its bake time, then the rest rolls; no request fails', async () => {
    await set({ strategy: 'canary' }, 'v4')
    const load = startLoad(url)
    const res = await grail(['up'], { cwd: dir })
    const report = await load.stop()
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.equal(report.failed, 0, report.errors.slice(0, 5).join('\n'))
    const firstNew = report.bodies.indexOf('v4')
    const lastOld = report.bodies.lastIndexOf('v3')
    assert.ok(firstNew >= 0 && lastOld > firstNew, 'old and canary answered side by side during the bake')
    const tail = await startLoad(url, { workers: 4 }).stop()
    assert.ok(tail.bodies.every((b) => b === 'v4'))
  })

  test('a canary that turns unhealthy during its bake is aborted and the old release keeps serving', async () => {
    const before = await status()
    await set({ strategy: 'canary', breakAfter: true }, 'v5')
    const load = startLoad(url)
    const res = await grail(['up'], { cwd: dir })
    const report = await load.stop()
    assert.equal(res.code, 1)
    assert.match(res.stderr, /failed during the canary bake/)
    assert.deepEqual(
      (await status()).instances.map((i) => i.id).sort(),
      before.instances.map((i) => i.id).sort(),
    )
    const tail = await startLoad(url, { workers: 4 }).stop()
    assert.ok(tail.bodies.every((b) => b === 'v4'))
    // requests that reached the canary after its page was removed are the only failures allowed
    assert.ok(
      report.errors.every((e) => e === 'HTTP 404'),
      report.errors.slice(0, 5).join('\n'),
    )
  })

  test('grail rollback re-deploys the previous release', async () => {
    const res = await grail(['rollback', 'web'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
    const tail = await startLoad(url, { workers: 4 }).stop()
    assert.ok(
      tail.bodies.length > 0 && tail.bodies.every((b) => b === 'v3'),
      tail.bodies.slice(0, 3).join(','),
    )
  })

  test('grail down destroys the instances and the proxy, and keeps the volume', async () => {
    const res = await grail(['down'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr)
    assert.equal((await status()).instances.length, 0)
    await assert.rejects(fetch(url, { signal: AbortSignal.timeout(1000) }))
    assert.ok((await readFile(join(dir, '.grail/volumes/demo/local/data/boots.txt'), 'utf8')).length > 0)
  })
})
