// A crash loop: an app that exits a few seconds after its health gate passed. Each apply replaces the
// dead instance until the loop is detected; then plan and status say so with the instance's last log
// lines, apply leaves it alone during the backoff, and a new release starts afresh.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { runCommand } from '../../src/util/exec.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'

interface Status {
  instances: Array<{ id: string; health: string }>
  crashLoops: Array<{
    service: string
    restarts: number
    summary: string
    instance: string | null
    log: string[]
  }>
}

const DYING = 'echo serving; httpd -f -p $PORT -h /srv/www & sleep 4; echo out of cheese, giving up; exit 3'
const FIXED = 'echo serving; exec httpd -f -p $PORT -h /srv/www'

// a backoff far longer than the test, so "not during the backoff" never depends on how fast it runs
const spec = (port: number, cmd: string) => `project: loopy
images:
  web:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, "${cmd}"]
services:
  web:
    image: web
    port: 8080
    publish: ${port}
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
    rollout: { healthTimeout: 10s, drain: 200ms }
    crashLoop: { restarts: 3, window: 1h, backoff: 1h }
`

describe('a crash-looping service backs off', () => {
  let dir: string
  let port: number
  const status = async () => parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
  /** Waits for the only instance to die (the app exits on its own), and returns its id. */
  const dead = async (): Promise<string> => {
    const deadline = Date.now() + 60_000
    for (;;) {
      const s = await status()
      const i = s.instances[0]
      if (s.instances.length === 1 && i && i.health === 'stopped') return i.id
      if (Date.now() > deadline) throw new Error(`the instance never exited: ${JSON.stringify(s)}`)
      await sleep(500)
    }
  }

  before(async () => {
    port = await freePort()
    dir = await busyboxProject({ 'grail.yaml': spec(port, DYING), 'site/index.html': 'hi\n' })
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
  })
  after(async () => {
    await tearDown(dir)
  })

  test('apply replaces the crashed instance until the restarts make a loop', async () => {
    for (let i = 1; i <= 3; i++) {
      const id = await dead()
      const res = await grail(['apply'], { cwd: dir })
      assert.equal(res.code, 0, res.stderr + res.stdout)
      assert.match(res.stdout, new RegExp(`replace +web ${id} +crashed: process exited`))
    }
  })

  test('plan holds the replacement back, says why and shows the last log lines', async () => {
    const id = await dead()
    const plan = await grail(['plan', '--detailed-exitcode'], { cwd: dir })
    assert.equal(plan.code, 2, 'a loop backing off is not converged')
    assert.doesNotMatch(plan.stdout, /replace/)
    assert.match(
      plan.stdout,
      new RegExp(
        `waiting +web ${id} +crashed: process exited; crash loop: 3 restarts in \\w+, next attempt in \\w+`,
      ),
    )
    assert.match(plan.stdout, /\| out of cheese, giving up/)
    const json = parseJson<{ actions: unknown[]; waiting: Array<{ instance: string; log: string[] }> }>(
      await grail(['--json', 'plan'], { cwd: dir }),
    )
    assert.deepEqual(json.actions, [])
    assert.equal(json.waiting[0]?.instance, id)
    assert.ok(json.waiting[0]?.log.includes('out of cheese, giving up'), json.waiting[0]?.log.join('\n'))
  })

  test('apply does not replace it during the backoff; status says so with the log', async () => {
    const id = await dead()
    const res = await grail(['apply'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.match(res.stdout, /crash loop: 3 restarts/)
    const s = await status()
    assert.deepEqual(
      s.instances.map((i) => [i.id, i.health]),
      [[id, 'stopped']],
      'the same dead instance: nothing was restarted',
    )
    assert.equal(s.crashLoops[0]?.restarts, 3)
    assert.equal(s.crashLoops[0]?.instance, id)
    const human = await grail(['status'], { cwd: dir })
    assert.match(human.stdout, /web: crash loop: 3 restarts in \w+, next attempt in \w+/)
    assert.match(human.stdout, /\| out of cheese, giving up/)
  })

  test('grail down clears the loop: the next up tries again at once', async () => {
    const down = await grail(['down'], { cwd: dir })
    assert.equal(down.code, 0, down.stderr)
    const plan = await grail(['plan'], { cwd: dir })
    assert.match(plan.stdout, /scale-up +web +0 of 1 replicas/)
    assert.doesNotMatch(plan.stdout, /waiting|crash loop/)
  })

  test('a fixed image is a new release that runs', async () => {
    await writeFile(join(dir, 'grail.yaml'), spec(port, FIXED))
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
    const s = await status()
    assert.equal(s.instances.length, 1)
    assert.equal(s.instances[0]?.health, 'healthy')
    assert.deepEqual(s.crashLoops, [])
    assert.equal((await (await fetch(`http://127.0.0.1:${port}/index.html`)).text()).trim(), 'hi')
    const plan = await grail(['plan', '--detailed-exitcode'], { cwd: dir })
    assert.equal(plan.code, 0, plan.stdout)
  })
})

// the app refuses to start while /data/broken exists (a volume, so every new instance sees it)
const BROKEN =
  'test -f /data/broken && echo refusing to start: /data/broken && exit 1; exec httpd -f -p $PORT -h /srv/www'

describe('replacements that die before their gate count towards the loop', () => {
  let dir: string
  const status = async () => parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))

  before(async () => {
    const port = await freePort()
    dir = await busyboxProject({
      'grail.yaml': `${spec(port, BROKEN)}    volumes: ["data:/data"]\n`,
      'site/index.html': 'hi\n',
    })
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
  })
  after(async () => {
    await tearDown(dir)
  })

  test('each apply fails with a clear message until the loop holds it back', async () => {
    const [victim] = (await status()).instances.map((i) => i.id)
    assert.ok(victim)
    await writeFile(join(dir, '.grail/volumes/loopy/local/data/broken'), 'x\n')
    const kill = await runCommand(
      { file: 'runc', args: ['--root', join(dir, '.grail/runc'), 'kill', victim, 'KILL'] },
      { allowFailure: true },
    )
    assert.equal(kill.code, 0, kill.stderr.toString())
    for (let i = 1; i <= 3; i++) {
      const res = await grail(['apply'], { cwd: dir })
      assert.equal(res.code, 1, `apply ${i}: ${res.stdout}${res.stderr}`)
      assert.match(res.stderr, /web: new instance \S+ failed the health gate: process exited/)
      assert.doesNotMatch(res.stderr, /bug/i)
    }
    const plan = await grail(['plan'], { cwd: dir })
    assert.match(
      plan.stdout,
      new RegExp(`waiting +web ${victim} +crashed: process exited; crash loop: 3 restarts`),
    )
    const res = await grail(['apply'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.deepEqual(
      (await status()).instances.map((i) => [i.id, i.health]),
      [[victim, 'stopped']],
    )
  })
})
