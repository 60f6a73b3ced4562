// Secrets of a deployed service (a busybox httpd running as uid 1000): env values marked secret or
// named like one, and a secret deploy file. Output shows keys, not values, unless --show-values; every
// file under .grail that holds a value is owner-only, whatever the umask; the append-only event log and
// the hotfix records never hold one; hotfix output is redacted; capture refuses a file holding one.
import assert from 'node:assert/strict'
import { chmod, readdir, readFile, stat } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { openDb } from '../../src/state/index.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'

const PASSWORD = 'pw-Zq8xK2vL9'
const TOKEN = 'tok-Hh3J7nB1w'
const FILE_SECRET = 'file-Rr5tY8uI0'
const SECRETS = [PASSWORD, TOKEN, FILE_SECRET]

const spec = (port: number) => `project: secrety
images:
  web:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - user: "1000:1000"
      # the app refuses to start unless it can read its secret config as its own, unprivileged user
      - cmd: [/bin/sh, -c, "test -r /etc/app.conf && exec httpd -f -p $PORT -h /srv/www"]
services:
  web:
    image: web
    port: 8080
    publish: ${port}
    env:
      GREETING: hello-visible
      DB_PASSWORD: { value: ${PASSWORD}, secret: true }
      API_TOKEN: ${TOKEN}
    files:
      /etc/app.conf: { content: "dsn=postgres://app@db/app\\npass ${FILE_SECRET}\\n", secret: true }
      /etc/plain.conf: "plain\\n"
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
    rollout: { healthTimeout: 10s, drain: 100ms }
`

interface Status {
  instances: Array<{ id: string }>
  releases: Array<{ config: { env: Record<string, string>; files: Record<string, string> } }>
}

/** Every regular file under `root` (the instances' own filesystems excepted: they are the app's). */
async function filesUnder(root: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name)
      const rel = relative(root, p)
      if (/^instances\/[^/]+\/(rootfs|upper|work)$/.test(rel) || rel === 'snapshots') continue
      if (e.isDirectory()) await walk(p)
      else if (e.isFile()) out.push(p)
    }
  }
  await walk(root)
  return out
}

const mode = async (p: string) => ((await stat(p)).mode & 0o777).toString(8)

describe('secrets: output, file modes, events, hotfix and capture (local provider)', () => {
  let dir: string
  let home: string
  let id: string
  before(async () => {
    dir = await busyboxProject({ 'grail.yaml': spec(await freePort()), 'site/index.html': 'hi\n' })
    home = join(dir, '.grail')
    const res = await grail(['up'], { cwd: dir, umask: '022' })
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.ok(!SECRETS.some((s) => res.stdout.includes(s) || res.stderr.includes(s)))
    const st = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
    id = st.instances[0]?.id as string
    assert.ok(id)
  })
  after(() => tearDown(dir))

  test('status --json shows env keys and file paths, not values; --show-values shows them', async () => {
    const res = await grail(['--json', 'status'], { cwd: dir })
    for (const s of [...SECRETS, 'hello-visible', 'postgres://']) assert.ok(!res.stdout.includes(s), s)
    const st = parseJson<Status>(res)
    const config = st.releases[0]?.config
    assert.deepEqual(Object.keys(config?.env ?? {}).sort(), ['API_TOKEN', 'DB_PASSWORD', 'GREETING'])
    assert.deepEqual(Object.keys(config?.files ?? {}).sort(), ['/etc/app.conf', '/etc/plain.conf'])
    const shown = await grail(['status', '--json', '--show-values'], { cwd: dir })
    const values = parseJson<Status>(shown).releases[0]?.config
    assert.equal(values?.env.DB_PASSWORD, PASSWORD)
    assert.equal(values?.env.GREETING, 'hello-visible')
    assert.match(values?.files['/etc/app.conf'] ?? '', new RegExp(FILE_SECRET))
  })

  test('a hotfix that prints the secrets has them redacted in its output, its record and the event log', async () => {
    const res = await grail(
      [
        'hotfix',
        id,
        '--reason',
        `rotate ${PASSWORD}`,
        '--ttl',
        '10m',
        '--',
        '/bin/sh',
        '-c',
        `cat /etc/app.conf; echo "db=$DB_PASSWORD api=$API_TOKEN greeting=$GREETING"; test "$DB_PASSWORD" = ${PASSWORD} && echo SESSION_SECRET=s3ss10n-v4lue`,
      ],
      { cwd: dir, umask: '022' },
    )
    assert.equal(res.code, 0, res.stderr + res.stdout)
    for (const s of [...SECRETS, 's3ss10n-v4lue']) assert.ok(!res.stdout.includes(s), `${s} in ${res.stdout}`)
    assert.match(res.stdout, /db=\[redacted\] api=\[redacted\]/)
    assert.ok(!res.stdout.includes('pass '), 'the secret file is redacted whole')
    assert.match(res.stdout, /SESSION_SECRET=\[redacted\]/)
    assert.match(res.stdout, /greeting=hello-visible/, 'what is not secret is shown')

    const db = openDb(join(home, 'state.db'))
    try {
      const text = (sql: string) =>
        (db.prepare(sql).all() as Array<Record<string, string>>)
          .map((r) => Object.values(r).join(' '))
          .join('\n')
      const events = text('SELECT kind, subject, data FROM events')
      const hotfixes = text('SELECT command, reason, changes FROM hotfixes')
      assert.match(events, /hotfix\.applied/)
      assert.match(events, /db=\[redacted\]/)
      for (const s of [...SECRETS, 's3ss10n-v4lue']) {
        assert.ok(!events.includes(s), `${s} is in the event log`)
        assert.ok(!hotfixes.includes(s), `${s} is in the hotfix records`)
      }
    } finally {
      db.close()
    }
  })

  test('every file under .grail that holds a secret is 0600, and .grail and the bundle dirs are 0700', async () => {
    assert.equal(await mode(home), '700')
    const holding: string[] = []
    for (const f of await filesUnder(home)) {
      const content = await readFile(f, 'latin1')
      if (!SECRETS.some((s) => content.includes(s))) continue
      holding.push(relative(home, f))
      assert.equal(await mode(f), '600', `${relative(home, f)} holds a secret`)
    }
    // the database, the spec cache, the instance's record, runtime config and secret deploy file at least
    for (const must of [
      'state.db',
      'spec-cache.json',
      `instances/${id}/config.json`,
      `instances/${id}/files/etc/app.conf`,
    ])
      assert.ok(holding.includes(must), `${must} holds the secrets: ${holding.join(', ')}`)
    assert.equal(await mode(join(home, 'instances')), '700')
    assert.equal(await mode(join(home, 'instances', id)), '700')
  })

  test('a home an older Grail left world-readable is made owner-only by the next command', async () => {
    const loose = [
      'state.db',
      'spec-cache.json',
      `instances/${id}/config.json`,
      `instances/${id}/instance.json`,
    ]
    for (const f of loose) await chmod(join(home, f), 0o644)
    await chmod(join(home, 'instances', id), 0o755)
    await chmod(home, 0o755)
    const res = await grail(['status'], { cwd: dir, umask: '022' })
    assert.equal(res.code, 0, res.stderr)
    assert.equal(await mode(home), '700')
    assert.equal(await mode(join(home, 'instances', id)), '700')
    for (const f of loose) assert.equal(await mode(join(home, f)), '600', f)
  })

  test('capture refuses a changed file that holds a secret, naming it, and writes nothing', async () => {
    const hot = await grail(
      [
        'hotfix',
        id,
        '--reason',
        'debug',
        '--ttl',
        '10m',
        '--',
        '/bin/sh',
        '-c',
        'echo "pw=$DB_PASSWORD" > /tmp/debug.txt',
      ],
      { cwd: dir },
    )
    assert.equal(hot.code, 0, hot.stderr)
    const images = async () => (await grail(['--json', 'images'], { cwd: dir })).stdout
    const before = await images()
    const res = await grail(['capture', id], { cwd: dir })
    assert.equal(res.code, 1, res.stderr + res.stdout)
    assert.match(res.stderr, /\/tmp\/debug\.txt holds the value of env DB_PASSWORD of web/)
    assert.match(res.stderr, /--allow-secrets/)
    assert.match(res.stderr, /marked secret: true/, 'the hint is not mangled by redaction')
    assert.ok(!res.stderr.includes(PASSWORD))
    assert.equal(await images(), before, 'no image was made')
    await assert.rejects(stat(join(dir, 'captured')), { code: 'ENOENT' })
    const spec = await readFile(join(dir, 'grail.yaml'), 'utf8')
    assert.ok(!spec.includes('captured'), 'grail.yaml is unchanged')

    const drift = await grail(['--json', 'drift', '--instance', id], { cwd: dir })
    assert.match(drift.stdout, /\/tmp\/debug\.txt/)
    assert.ok(!drift.stdout.includes(PASSWORD))

    const allowed = await grail(['capture', id, '--allow-secrets'], { cwd: dir })
    assert.equal(allowed.code, 0, allowed.stderr + allowed.stdout)
    assert.match(allowed.stdout, /warning: \/tmp\/debug\.txt holds the value of env DB_PASSWORD of web/)
    assert.equal(await readFile(join(dir, 'captured/web/tmp/debug.txt'), 'utf8'), `pw=${PASSWORD}\n`)
  })
})
