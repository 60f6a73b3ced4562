// `grail serve` with the local provider, under steady load: it replaces a SIGKILLed instance, a drifted
// one and one whose hotfix expired, recycles by maxAge a budget at a time, shares the apply lock with a
// `grail apply` typed by hand, and after its own SIGKILL in the middle of a replacement it converges with
// no orphan and no lost volume data.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { openDb } from '../../src/state/index.js'
import { assertSteady, type LoadReport, startLoad } from '../helpers/load.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'
import { type ServeProcess, startServe } from '../helpers/serve.js'
import { httpdImages } from '../helpers/specs.js'

const spec = (port: number, extra = '') => `project: served
${httpdImages()}  slow:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, "sleep 4; exec httpd -f -p $PORT -h /srv/www"]
services:
  web:
    image: web
    replicas: 3
    port: 8080
    publish: ${port}
    volumes: ["data:/data"]
    healthcheck: { http: /index.html, interval: 200ms, timeout: 500ms }
    rollout: { healthTimeout: 10s, drain: 300ms }
    # these tests kill instances on purpose, more often than a crash loop's count
    crashLoop: { restarts: 100 }
${extra}  slow:
    image: slow
    replicas: 1
    port: 8080
    healthcheck: { http: /index.html, interval: 200ms, timeout: 500ms }
    rollout: { healthTimeout: 15s, drain: 100ms }
policies:
  disruptionBudget: { maxUnavailable: 1, minHealthy: 3 }
`

interface Instance {
  id: string
  health: string
  pid: number | null
  createdAt: string
}

/** At least 200 requests per second, none failed, answered throughout. */
function assertLoad(report: LoadReport): void {
  assert.equal(report.failed, 0, `failed requests: ${report.errors.slice(0, 5).join('; ')}`)
  assertSteady(report)
  assert.ok(report.rate >= 200, `the load ran at ${report.rate.toFixed(0)} req/s, below 200`)
}

describe('grail serve', { timeout: 600_000 }, () => {
  let dir: string
  let port: number
  let serve: ServeProcess
  const runc = (...args: string[]) =>
    execFileSync('runc', ['--root', join(dir, '.grail', 'runc'), ...args], { encoding: 'utf8' })
  /** the instances of `service` (web unless named) */
  const status = async (service = 'web') => {
    const all = parseJson<{ instances: Array<Instance & { service: string }> }>(
      await grail(['status', '--json'], { cwd: dir }),
    )
    return { instances: all.instances.filter((i) => i.service === service) }
  }
  /** the daemon's last log lines, for a failure message */
  const serveTrouble = () =>
    serve.lines
      .slice(-40)
      .map((l) => JSON.stringify(l))
      .join('\n')
  /** Waits until `ok` holds of `grail status`, polling; fails after `ms` with the last status. */
  const waitForStatus = async (what: string, ms: number, ok: (i: Instance[]) => boolean) => {
    const deadline = Date.now() + ms
    let last: Instance[] = []
    while (Date.now() < deadline) {
      last = (await status()).instances
      if (ok(last)) return last
      await sleep(100)
    }
    assert.fail(
      `${what} within ${ms} ms; last status: ${JSON.stringify(last)}\ngrail serve said:\n${serveTrouble()}`,
    )
  }
  /** resolves at the daemon's next `spec reloaded` (call it before the edit) */
  const nextReload = () => {
    const count = () => serve.lines.filter((l) => l.msg === 'spec reloaded').length
    const before = count()
    return serve.waitForLine(() => count() > before)
  }
  const healthy3Without = (gone: string) => (is: Instance[]) =>
    !is.some((i) => i.id === gone) && is.length === 3 && is.every((i) => i.health === 'healthy')

  before(async () => {
    port = await freePort()
    dir = await busyboxProject({ 'grail.yaml': spec(port), 'site/index.html': 'v1\n' })
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr)
    serve = await startServe(dir, ['--interval', '30s'])
  })

  after(async () => {
    await serve?.stop()
    if (dir) await tearDown(dir)
  })

  test('a second grail serve of the project fails at once naming the first; the API and metrics of the daemon answer', async () => {
    const second = await grail(['serve', '--listen', '127.0.0.1:0', '--json'], { cwd: dir })
    assert.equal(second.code, 1, second.stdout)
    const err = (JSON.parse(second.stderr) as { error: { code: string; message: string } }).error
    assert.equal(err.code, 'LOCKED')
    assert.match(err.message, new RegExp(`another serve is running: held by grail serve .*pid ${serve.pid} `))

    const token = parseJson<{ token: string }>(
      await grail(['token', 'create', '--name', 'serve-test', '--scope', 'read', '--json'], { cwd: dir }),
    ).token
    const auth = { authorization: `Bearer ${token}` }
    const api = await fetch(`${serve.url}/api/v1/environments/local/status`, { headers: auth })
    assert.equal(api.status, 200)
    const viaApi = (await api.json()) as { instances: Array<{ id: string }> }
    const viaCli = parseJson<{ instances: Array<{ id: string }> }>(
      await grail(['status', '--json'], { cwd: dir }),
    )
    assert.deepEqual(viaApi.instances.map((i) => i.id).sort(), viaCli.instances.map((i) => i.id).sort())
    assert.equal((await fetch(`${serve.url}/api/v1/environments/local/status`)).status, 401)
    const write = await fetch(`${serve.url}/api/v1/environments/local/recycle`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'a read token may not' }),
    })
    assert.equal(write.status, 403)
    const metrics = await (await fetch(`${serve.url}/metrics`, { headers: auth })).text()
    assert.match(metrics, /^grail_reconcile_duration_seconds_count\{environment="local"\} [1-9]/m)
    assert.match(metrics, /^grail_instances\{.*health="healthy".*\} 3$/m)
  })

  test('an invalid edit of grail.yaml is logged once and the last valid spec kept', async () => {
    const good = await readFile(join(dir, 'grail.yaml'), 'utf8')
    const reloaded = nextReload()
    await writeFile(join(dir, 'grail.yaml'), good.replace('replicas: 3', 'replicas: lots'))
    try {
      const [victim] = (await status()).instances
      assert.ok(victim?.pid)
      process.kill(victim.pid, 'SIGKILL')
      const line = await serve.waitForLine((l) => l.msg === 'spec invalid: the last valid spec is kept')
      assert.match(JSON.stringify(line.details), /grail\.yaml:\d+:\d+.*replicas/)
      // and it still heals with the spec it had
      await waitForStatus(
        `killed ${victim.id} replaced under the last valid spec`,
        10_000,
        healthy3Without(victim.id),
      )
      assert.equal(serve.lines.filter((l) => l.msg === 'spec invalid: the last valid spec is kept').length, 1)
    } finally {
      await writeFile(join(dir, 'grail.yaml'), good)
    }
    await reloaded
  })

  test('drift.policy report keeps a drifted instance and records drift.reported once; back to fix, it is replaced', async () => {
    const good = await readFile(join(dir, 'grail.yaml'), 'utf8')
    const reloaded = nextReload()
    await writeFile(join(dir, 'grail.yaml'), spec(port, '    drift: { policy: report }\n'))
    await reloaded
    const [kept] = (await status()).instances
    assert.ok(kept)
    runc('exec', kept.id, '/bin/sh', '-c', 'echo kept by policy > /srv/www/extra.html')
    const reported = await serve.waitForLine((l) => l.msg === 'drift kept' && l.instance === kept.id)
    assert.match(String(reported.drift), /extra\.html/)
    await sleep(2000)
    assert.ok(
      (await status()).instances.some((i) => i.id === kept.id),
      'report keeps the instance',
    )
    const events = parseJson<Array<{ kind: string; subject: string }>>(
      await grail(['events', '--json', '--subject', kept.id], { cwd: dir }),
    )
    assert.equal(events.filter((e) => e.kind === 'drift.reported').length, 1)
    const plan = await grail(['plan'], { cwd: dir })
    assert.match(plan.stdout, new RegExp(`kept +web ${kept.id} .*drift\\.policy: report`))
    await writeFile(join(dir, 'grail.yaml'), good)
    await waitForStatus(
      `drifted ${kept.id} replaced once the policy is fix`,
      10_000,
      healthy3Without(kept.id),
    )
  })

  test('a SIGKILLed instance, a file changed inside one and an expired 3 s hotfix are each replaced within 10 s, under load with 0 failed requests', async () => {
    const load = startLoad(`http://127.0.0.1:${port}/index.html`, { workers: 8, minRequests: 2000 })
    try {
      const [killed] = (await status()).instances
      assert.ok(killed?.pid, 'the instance has a pid')
      process.kill(killed.pid, 'SIGKILL')
      await waitForStatus(`killed ${killed.id} replaced`, 10_000, healthy3Without(killed.id))

      const [drifted] = (await status()).instances
      assert.ok(drifted)
      runc('exec', drifted.id, '/bin/sh', '-c', 'echo changed by hand > /srv/www/index.html')
      await waitForStatus(`drifted ${drifted.id} replaced`, 10_000, healthy3Without(drifted.id))

      const [hot] = (await status()).instances
      assert.ok(hot)
      const fix = await grail(
        [
          'hotfix',
          hot.id,
          '--ttl',
          '3s',
          '--reason',
          'test: break glass',
          '--',
          '/bin/sh',
          '-c',
          'echo hot > /srv/www/hot.html',
        ],
        { cwd: dir },
      )
      assert.equal(fix.code, 0, fix.stderr)
      const fixedAt = Date.now()
      // excused until its TTL ends: still serving a second and a half later
      await sleep(1500)
      assert.ok(
        (await status()).instances.some((i) => i.id === hot.id),
        'a live hotfix is not replaced',
      )
      await waitForStatus(`hotfixed ${hot.id} replaced after its TTL`, 13_000, healthy3Without(hot.id))
      assert.ok(Date.now() - fixedAt >= 3000, 'replaced only after the TTL')
    } finally {
      assertLoad(await load.stop())
    }
    const events = parseJson<Array<{ kind: string; data: Record<string, unknown> }>>(
      await grail(['events', '--json', '-n', '200'], { cwd: dir }),
    )
    const causes = events
      .filter((e) => e.kind === 'reconcile.done')
      .flatMap((e) => (e.data.actions as Array<{ cause?: string }>).map((a) => a.cause))
    for (const cause of ['crashed', 'drift'])
      assert.ok(causes.includes(cause), `a reconcile.done with cause ${cause}`)
  })

  test('a hung instance (SIGSTOP: its process lives, its checks fail) is replaced within 20 s', async () => {
    const [hung] = (await status()).instances
    assert.ok(hung?.pid)
    // the instance's init and the app under it
    const tree = (pid: number): number[] => {
      let kids: number[] = []
      try {
        kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
          .split(' ')
          .filter(Boolean)
          .map(Number)
      } catch {}
      return [pid, ...kids.flatMap(tree)]
    }
    const pids = tree(hung.pid)
    assert.ok(pids.length >= 2, `the app runs under the instance's init: ${pids}`)
    for (const p of pids) process.kill(p, 'SIGSTOP')
    try {
      await waitForStatus(`hung ${hung.id} replaced`, 20_000, healthy3Without(hung.id))
    } finally {
      // gone with its instance; if not, let it go on
      for (const p of pids)
        try {
          process.kill(p, 'SIGCONT')
        } catch {}
    }
  })

  test('maxAge 5s recycles every instance one budget at a time, under load with 0 failed requests', async () => {
    const before = (await status()).instances.map((i) => i.id)
    const db = openDb(join(dir, '.grail', 'state.db'))
    let most = 0
    let fewest = Number.POSITIVE_INFINITY
    let watching = true
    const watcher = (async () => {
      while (watching) {
        const rows = db
          .prepare(
            "SELECT phase FROM instances WHERE service = 'web' AND phase IN ('healthy', 'starting', 'creating')",
          )
          .all() as Array<{ phase: string }>
        most = Math.max(most, rows.length)
        fewest = Math.min(fewest, rows.filter((r) => r.phase === 'healthy').length)
        await sleep(5)
      }
    })()
    const load = startLoad(`http://127.0.0.1:${port}/index.html`, { workers: 8, minRequests: 2000 })
    try {
      // the daemon reloads the edited spec; recycling is no new release
      await writeFile(join(dir, 'grail.yaml'), spec(port, '    recycle: { maxAge: 5s }\n'))
      await waitForStatus(
        'every instance recycled',
        60_000,
        (is) => is.length === 3 && is.every((i) => !before.includes(i.id) && i.health === 'healthy'),
      )
    } finally {
      await writeFile(join(dir, 'grail.yaml'), spec(port))
      assertLoad(await load.stop())
      watching = false
      await watcher
      db.close()
    }
    assert.ok(fewest >= 3, `at some point only ${fewest} instances were healthy (minHealthy 3)`)
    assert.ok(
      most <= 4,
      `${most} instances at once: more than one budget (maxUnavailable 1) was recycled at a time`,
    )
    // let the last recycling finish before the next test reads the spec without maxAge
    await sleep(1000)
  })

  test('grail apply while the daemon replaces an instance fails at once naming grail serve; never two writers', async () => {
    // the slow service's new instance takes 4 s to start: the daemon holds the apply lock meanwhile
    const [victim] = (await status('slow')).instances
    assert.ok(victim?.pid)
    const db = openDb(join(dir, '.grail', 'state.db'))
    try {
      process.kill(victim.pid, 'SIGKILL')
      const deadline = Date.now() + 10_000
      let holder: { holder: string; pid: number } | undefined
      while (!holder && Date.now() < deadline) {
        holder = db.prepare("SELECT holder, pid FROM locks WHERE name = 'apply'").get() as typeof holder
        if (!holder) await sleep(5)
      }
      assert.ok(holder, 'the daemon took the apply lock to replace the instance')
      assert.equal(holder.pid, serve.pid)
      const lastEvent = (db.prepare('SELECT MAX(id) AS id FROM events').get() as { id: number }).id
      const started = Date.now()
      const res = await grail(['apply', '--json'], { cwd: dir })
      assert.equal(res.code, 1, res.stdout)
      assert.ok(Date.now() - started < 3000, 'a held lock fails apply at once')
      const err = (JSON.parse(res.stderr || res.stdout) as { error: { code: string; message: string } }).error
      assert.equal(err.code, 'LOCKED')
      assert.match(err.message, new RegExp(`held by grail serve \\(.*\\) \\(pid ${serve.pid} `))
      // the refused apply wrote nothing: every event since is the daemon's
      const since = db.prepare('SELECT kind FROM events WHERE id > ?').all(lastEvent) as Array<{
        kind: string
      }>
      assert.ok(
        !since.some((e) => e.kind === 'lock.stale' || e.kind === 'apply.recovered'),
        JSON.stringify(since),
      )
      const replacing = db
        .prepare(
          "SELECT COUNT(*) AS n FROM instances WHERE service = 'slow' AND phase IN ('creating', 'starting')",
        )
        .get() as { n: number }
      assert.ok(replacing.n <= 1, 'one replacement, the daemon’s')
    } finally {
      db.close()
    }
    const deadline = Date.now() + 20_000
    for (;;) {
      const is = (await status('slow')).instances
      if (is.length === 1 && is[0]?.id !== victim.id && is[0]?.health === 'healthy') break
      if (Date.now() > deadline) assert.fail(`slow not replaced: ${JSON.stringify(is)}\n${serveTrouble()}`)
      await sleep(200)
    }
  })

  test('SIGKILL of grail serve in the middle of a replacement: the next start converges, no orphan, volume data kept, the event log tells', async () => {
    const [writer] = (await status()).instances
    assert.ok(writer)
    runc('exec', writer.id, '/bin/sh', '-c', 'echo kept > /data/proof')
    const [victim] = (await status()).instances
    assert.ok(victim?.pid)
    const db = openDb(join(dir, '.grail', 'state.db'))
    try {
      process.kill(victim.pid, 'SIGKILL')
      // the daemon is mid-replacement once a new instance is being made
      const deadline = Date.now() + 10_000
      let midway = false
      while (!midway && Date.now() < deadline) {
        const row = db
          .prepare("SELECT COUNT(*) AS n FROM instances WHERE phase IN ('creating', 'starting')")
          .get() as { n: number }
        midway = row.n > 0
        if (!midway) await sleep(2)
      }
      assert.ok(midway, 'the daemon began a replacement')
      await serve.stop('SIGKILL')
    } finally {
      db.close()
    }
    serve = await startServe(dir, ['--interval', '30s'])
    const converged = await waitForStatus(
      'converged after the restart',
      20_000,
      (is) =>
        is.length === 3 && is.every((i) => i.health === 'healthy') && !is.some((i) => i.id === victim.id),
    )
    // nothing left to do and nothing the state does not know of (an orphan would be a destroy action)
    let actions: unknown[] = []
    for (const until = Date.now() + 20_000; Date.now() < until; await sleep(200)) {
      actions = parseJson<{ actions: unknown[] }>(await grail(['plan', '--json'], { cwd: dir })).actions
      if (actions.length === 0) break
    }
    assert.deepEqual(actions, [])
    const containers = JSON.parse(runc('list', '--format', 'json') || '[]') as Array<{ id: string }>
    const known = [...converged, ...(await status('slow')).instances].map((i) => i.id)
    assert.deepEqual(containers.map((c) => c.id).sort(), known.sort())
    const [reader] = converged
    assert.ok(reader)
    assert.equal(runc('exec', reader.id, '/bin/cat', '/data/proof'), 'kept\n')
    const events = parseJson<Array<{ kind: string; data: Record<string, unknown> }>>(
      await grail(['events', '--json', '-n', '200'], { cwd: dir }),
    )
    const interrupted = events.find((e) => e.kind === 'reconcile.interrupted')
    assert.ok(interrupted, 'the restart records the interrupted step')
    assert.match(JSON.stringify(interrupted.data.actions), new RegExp(victim.id))
    const resumed = events.find((e) => e.kind === 'reconcile.resumed')
    assert.ok(resumed, 'and how it was finished')
    assert.ok((resumed.data.recovered as string[]).length + (resumed.data.actions as unknown[]).length > 0)
    assert.ok(
      events.some((e) => e.kind === 'lock.stale'),
      'the dead daemon’s locks were taken over',
    )
  })
})
