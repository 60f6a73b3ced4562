// Names at the length limits: a service name at the longest the schema allows deploys at any release
// number, one character more or the build sandboxes' prefix is refused when the spec is read, and a
// state holding an id an older Grail made (too long for an instance) leaves status, apply and down working.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { runCommand } from '../../src/util/exec.js'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { openDb } from '../../src/state/index.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, removeDir, tearDown, tempProject } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

interface Status {
  instances: Array<{ id: string; service: string; release: number; health: string }>
}

// 63 characters, the longest a name may be
const LONG = `web-${'x'.repeat(59)}`

const spec = (o: { service: string; port: number; greeting: string }) => `project: names
${httpdImages()}services:
  ${o.service}:
    image: web
    port: 8080
    publish: ${o.port}
    env: { GREETING: "${o.greeting}" }
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
    rollout: { healthTimeout: 5s, drain: 200ms }
`

/** Adds a superseded copy of the service's newest release numbered `number`, as years of applies would. */
function skipReleasesTo(dir: string, service: string, number: number): void {
  const db = openDb(join(dir, '.grail', 'state.db'))
  try {
    db.prepare(
      `INSERT INTO releases (service, environment, number, image_name, image_version, image_digest, config_digest, config, status, created_at)
       SELECT service, environment, ?, image_name, image_version, image_digest, config_digest, config, 'superseded', created_at
       FROM releases WHERE service = ? ORDER BY number DESC LIMIT 1`,
    ).run(number, service)
  } finally {
    db.close()
  }
}

/** Records an instance as an older Grail did before its create failed on the id. */
function insertOldInstance(dir: string, id: string, service: string, phase: string): void {
  const db = openDb(join(dir, '.grail', 'state.db'))
  try {
    const now = new Date().toISOString()
    db.prepare(
      `INSERT INTO instances (id, service, environment, release_number, provider, phase, created_at, updated_at)
       VALUES (?, ?, 'local', 1, 'local', ?, ?, ?)`,
    ).run(id, service, phase, now, now)
  } finally {
    db.close()
  }
}

describe('names at the limits', () => {
  let dir: string
  let port: number
  const status = async () => parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
  const deployGreeting = async (greeting: string) => {
    await writeFile(join(dir, 'grail.yaml'), spec({ service: LONG, port, greeting }))
    const res = await grail(['apply'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
  }

  before(async () => {
    port = await freePort()
    dir = await busyboxProject({
      'grail.yaml': spec({ service: LONG, port, greeting: 'one' }),
      'site/index.html': 'ok\n',
    })
  })
  after(async () => {
    await tearDown(dir)
  })

  test('a 63-character service name deploys, and keeps deploying past release 10 and at 10 digits', async () => {
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/index.html`)).text(), 'ok\n')
    skipReleasesTo(dir, LONG, 10)
    await deployGreeting('two')
    skipReleasesTo(dir, LONG, 9_999_999_998)
    await deployGreeting('three')
    const s = await status()
    assert.equal(s.instances.length, 1)
    const [inst] = s.instances
    assert.equal(inst?.service, LONG)
    assert.equal(inst?.release, 9_999_999_999)
    assert.equal(inst?.health, 'healthy')
    assert.ok((inst?.id.length ?? 99) <= 63, inst?.id)
    assert.ok(inst?.id.endsWith(`-r9999999999-${inst.id.slice(-6)}`), inst?.id)
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/index.html`)).text(), 'ok\n')
  })

  test('an id in state that no instance can have (an older Grail made it): status, apply and down work', async () => {
    const old = `${LONG}-r1-abcdef`
    insertOldInstance(dir, old, LONG, 'creating')
    insertOldInstance(dir, `${old}0`, LONG, 'healthy')
    const st = await grail(['status'], { cwd: dir })
    assert.equal(st.code, 0, st.stderr)
    assert.match(st.stdout, new RegExp(`${old}\\s.*invalid id`))
    const applied = await grail(['apply'], { cwd: dir })
    assert.equal(applied.code, 0, applied.stderr + applied.stdout)
    assert.deepEqual(
      (await status()).instances.map((i) => i.health),
      ['healthy'],
    )
    insertOldInstance(dir, `${old}1`, LONG, 'healthy')
    const down = await grail(['down'], { cwd: dir })
    assert.equal(down.code, 0, down.stderr + down.stdout)
    assert.match(down.stdout, /destroyed 2 instance\(s\)/)
    assert.deepEqual((await status()).instances, [])
  })
})

describe('names past the limits are refused when the spec is read', () => {
  const dirs: string[] = []
  after(async () => {
    for (const d of dirs) await removeDir(d)
  })
  const planOf = async (service: string) => {
    const dir = await tempProject({ 'grail.yaml': spec({ service, port: 1, greeting: 'x' }) })
    dirs.push(dir)
    return grail(['plan'], { cwd: dir })
  }

  test('a 64-character service name: the key, the limit and the name cut to fit', async () => {
    const res = await planOf(`${LONG}y`)
    assert.equal(res.code, 1, res.stderr)
    assert.ok(
      res.stderr.includes(`services.${LONG}y: a name is at most 63 characters, this one has 64`),
      res.stderr,
    )
    assert.ok(res.stderr.includes(`hint: try "${LONG}"`), res.stderr)
  })

  test("a service name starting with the build sandboxes' prefix", async () => {
    const res = await planOf('grail-b-web')
    assert.equal(res.code, 1, res.stderr)
    assert.match(res.stderr, /services\.grail-b-web: a service name may not start with "grail-b"/)
  })
})

describe('grail down when one instance cannot be removed', () => {
  let dir: string
  let stuck = ''
  const chattr = (flag: '+i' | '-i') =>
    runCommand({ file: 'chattr', args: [flag, join(dir, '.grail', 'instances', stuck, 'instance.json')] })

  before(async () => {
    dir = await busyboxProject({
      'grail.yaml': spec({ service: 'web', port: await freePort(), greeting: 'x' }).replace(
        '    image: web\n',
        '    image: web\n    replicas: 2\n',
      ),
      'site/index.html': 'ok\n',
    })
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
  })
  after(async () => {
    if (stuck) await chattr('-i').catch(() => {})
    await tearDown(dir)
  })

  test('removes the others, then exits 1 naming the one it could not remove and why', async () => {
    const before = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir })).instances
    assert.equal(before.length, 2)
    stuck = before[0]?.id ?? ''
    // an immutable file in its bundle: removing it fails, as a real filesystem problem would
    await chattr('+i')
    const down = await grail(['down'], { cwd: dir })
    assert.equal(down.code, 1, down.stderr + down.stdout)
    assert.match(down.stdout, /destroyed 1 instance\(s\)/)
    assert.match(down.stderr, /down could not remove everything/)
    assert.match(down.stderr, new RegExp(`instance ${stuck}: \\S+`))
    const left = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir })).instances
    assert.deepEqual(
      left.map((i) => i.id),
      [stuck],
    )
    await chattr('-i')
    const again = await grail(['down'], { cwd: dir })
    assert.equal(again.code, 0, again.stderr)
    assert.deepEqual(parseJson<Status>(await grail(['--json', 'status'], { cwd: dir })).instances, [])
  })
})
