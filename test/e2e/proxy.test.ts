// The proxy as a user meets it when things go wrong: its daemon SIGKILLed under load (its keeper brings
// it back with its routes, no grail command needed), daemon and keeper both killed (the next status,
// plan, drift or apply notices, says so and restarts it), and published services renamed or removed
// (apply stops the proxies no service needs, down stops every proxy of the environment). Run for both
// data planes: HAProxy (one process per project, under one keeper) and the builtin proxy (one daemon and
// keeper per service, where HAProxy is absent).
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startLoad } from '../helpers/load.js'
import { fetchWithRetry, freePort } from '../helpers/net.js'
import { busyboxProject, grail, tearDown } from '../helpers/project.js'

const service = (name: string, port: number) => `  ${name}:
    image: web
    replicas: 2
    port: 8080
    publish: ${port}
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
    rollout: { healthTimeout: 5s, drain: 300ms }
`
const spec = (services: Array<[string, number]>) => `project: px
images:
  web:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, "exec httpd -f -p $PORT -h /srv/www"]
services:
${services.map(([n, p]) => service(n, p)).join('')}`

/** True when something accepts connections on the port; false when they are refused. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.setTimeout(5000, () => socket.destroy(new Error(`connect to ${port} timed out`)))
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') resolve(false)
      // accepted into the queue of a listening socket that was closing meanwhile: it still answered
      else if (err.code === 'ECONNRESET') resolve(true)
      else reject(err)
    })
  })
}

/** Pids of proxy daemons, HAProxy processes and keepers whose command line names a file under `dir`. */
async function proxyProcesses(dir: string): Promise<number[]> {
  const found: number[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    let argv: string[]
    try {
      argv = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0')
    } catch {
      continue
    }
    const entry =
      argv[0]?.endsWith('haproxy') === true ||
      argv.some((a) => a.includes('daemon-main') || a.includes('keeper-main'))
    if (entry && argv.some((a) => a.startsWith(dir))) found.push(Number(name))
  }
  return found
}

for (const kind of ['haproxy', 'builtin'] as const)
  describe(`the supervised proxy (${kind} data plane)`, () => {
    let dir: string
    let web: number
    let api: number
    const url = () => `http://127.0.0.1:${web}/index.html`
    const haproxy = kind === 'haproxy'
    /** The pid of the process serving `name` (`local-web`), or with `keeper.pid` of its keeper. */
    const pidOf = async (name: string, file = 'pid') => {
      if (!haproxy) return Number((await readFile(join(dir, '.grail/proxy', name, file), 'utf8')).trim())
      const plane = join(dir, '.grail/dataplane')
      if (file === 'keeper.pid') return Number((await readFile(join(plane, 'keeper.pid'), 'utf8')).trim())
      return (JSON.parse(await readFile(join(plane, 'state.json'), 'utf8')) as { pid: number }).pid
    }
    /** The routes the data plane serves: proxy directories (builtin) or routes.json keys (HAProxy). */
    const routeNames = async () => {
      if (!haproxy) return (await readdir(join(dir, '.grail/proxy'))).sort()
      const file = join(dir, '.grail/dataplane/routes.json')
      const routes = JSON.parse(await readFile(file, 'utf8')) as { routes: Record<string, unknown> }
      return Object.keys(routes.routes)
        .map((k) => k.replace('.', '-'))
        .sort()
    }
    let saved: string | undefined
    /** Kills the keeper first (so nothing restarts the daemon), then the daemon. */
    const killBoth = async (name: string) => {
      const keeper = await pidOf(name, 'keeper.pid').catch(() => undefined)
      const daemon = await pidOf(name)
      if (keeper !== undefined) process.kill(keeper, 'SIGKILL')
      await sleep(100)
      process.kill(daemon, 'SIGKILL')
      for (let i = 0; i < 100 && (await answers(web)); i++) await sleep(50)
      assert.equal(await answers(web), false, 'the port is closed with both processes gone')
    }

    before(async () => {
      saved = process.env.GRAIL_DATAPLANE
      process.env.GRAIL_DATAPLANE = kind
      web = await freePort()
      api = await freePort()
      dir = await busyboxProject({
        'grail.yaml': spec([
          ['web', web],
          ['api', api],
        ]),
        'site/index.html': 'v1\n',
      })
      const res = await grail(['up'], { cwd: dir })
      assert.equal(res.code, 0, res.stderr + res.stdout)
    })
    after(async () => {
      await tearDown(dir)
      if (saved === undefined) delete process.env.GRAIL_DATAPLANE
      else process.env.GRAIL_DATAPLANE = saved
    })

    test('kill -9 of the proxy under load: its keeper restarts it at once with its routes, no grail command run', async (t) => {
      const workers = 16
      const load = startLoad(url(), { workers })
      await sleep(1000)
      const old = await pidOf('local-web')
      process.kill(old, 'SIGKILL')
      let fresh = old
      for (let i = 0; i < 200 && fresh === old; i++) {
        await sleep(50)
        fresh = await pidOf('local-web').catch(() => old)
      }
      assert.notEqual(fresh, old, 'a new daemon runs')
      await sleep(1000)
      const during = await load.stop()
      t.diagnostic(`around the kill: ${during.ok} ok, ${during.failed} failed ${during.errors.slice(0, 3)}`)
      // the keeper holds the listening socket: only connections the dead daemon had accepted can fail, a
      // request in flight on one and, at most, the next request a worker sends on it before it sees the close
      assert.ok(
        during.failed <= 2 * workers,
        `${during.failed} failed: ${during.errors.slice(0, 5).join('\n')}`,
      )
      const steady = startLoad(url(), { workers })
      await sleep(2000)
      const afterwards = await steady.stop()
      t.diagnostic(`after the restart: ${afterwards.ok} ok, ${afterwards.failed} failed`)
      assert.equal(afterwards.failed, 0, afterwards.errors.slice(0, 5).join('\n'))
      assert.ok(afterwards.bodies.every((b) => b === 'v1'))
      const status = await grail(['--json', 'status'], { cwd: dir })
      assert.equal(status.code, 0, status.stderr)
      const proxies = (
        JSON.parse(status.stdout) as { proxies: Array<{ service: string; state: string; pid: number }> }
      ).proxies
      assert.deepEqual(
        proxies.find((p) => p.service === 'web'),
        {
          environment: 'local',
          service: 'web',
          listen: `127.0.0.1:${web}`,
          state: 'up',
          pid: fresh,
          ...(haproxy ? { keeper: await pidOf('local-web', 'keeper.pid') } : {}),
          detail: '2 backend(s)',
        },
      )
    })

    test('daemon and keeper both killed: grail status says the proxy was down, exits 1, and restarts it', async () => {
      await killBoth('local-web')
      const res = await grail(['status'], { cwd: dir })
      assert.equal(res.code, 1, res.stderr + res.stdout)
      assert.match(
        res.stdout,
        new RegExp(
          `proxy local/web on 127\\.0\\.0\\.1:${web}: restarted \\(pid \\d+\\): it was down \\((daemon|HAProxy) pid \\d+ gone\\); restarted with 2 backend\\(s\\)`,
        ),
      )
      // one HAProxy serves both services: it was down for both
      assert.match(
        res.stdout,
        new RegExp(`proxy local/api on 127\\.0\\.0\\.1:${api}: ${haproxy ? 'restarted' : 'up'}`),
      )
      assert.equal((await fetchWithRetry(url(), 1000)).trim(), 'v1')
      assert.equal((await grail(['status'], { cwd: dir })).code, 0, 'all is well again')
    })

    test('status --json reports a dead proxy too', async () => {
      await killBoth('local-web')
      const res = await grail(['--json', 'status'], { cwd: dir })
      assert.equal(res.code, 1, res.stderr)
      const { proxies } = JSON.parse(res.stdout) as {
        proxies: Array<{ service: string; state: string; detail: string }>
      }
      const p = proxies.find((x) => x.service === 'web')
      assert.equal(p?.state, 'restarted')
      assert.match(p?.detail ?? '', /it was down/)
      assert.equal((await fetchWithRetry(url(), 1000)).trim(), 'v1')
    })

    for (const command of [['plan'], ['drift'], ['apply']]) {
      test(`grail ${command.join(' ')} notices a dead proxy, says so and restarts it`, async () => {
        await killBoth('local-web')
        const res = await grail(command, { cwd: dir })
        assert.equal(res.code, 0, res.stderr + res.stdout)
        assert.match(
          res.stderr + res.stdout,
          new RegExp(`proxy local/web on 127\\.0\\.0\\.1:${web}: restarted`),
        )
        assert.equal((await fetchWithRetry(url(), 1000)).trim(), 'v1')
      })
    }

    test('two commands that find the proxy dead at once start one proxy between them', async () => {
      await killBoth('local-web')
      const [status, plan] = await Promise.all([
        grail(['status'], { cwd: dir }),
        grail(['plan'], { cwd: dir }),
      ])
      assert.ok(status.code === 0 || status.code === 1, status.stderr)
      assert.equal(plan.code, 0, plan.stderr)
      assert.equal((await fetchWithRetry(url(), 1000)).trim(), 'v1')
      const ours = await proxyProcesses(join(dir, haproxy ? '.grail/dataplane' : '.grail/proxy/local-web'))
      assert.equal(ours.length, 2, `one keeper and one daemon: ${ours}`)
      assert.deepEqual(ours.sort(), [await pidOf('local-web'), await pidOf('local-web', 'keeper.pid')].sort())
    })

    test('renaming a published service and applying: the old port no longer answers, the new one serves', async () => {
      const site = await freePort()
      await writeFile(
        join(dir, 'grail.yaml'),
        spec([
          ['site', site],
          ['api', api],
        ]),
      )
      const res = await grail(['apply'], { cwd: dir })
      assert.equal(res.code, 0, res.stderr + res.stdout)
      assert.equal(await answers(web), false, `nothing answers on the old port ${web}`)
      assert.match(res.stdout, new RegExp(`proxy local/web on 127\\.0\\.0\\.1:${web}: stopped`))
      assert.equal((await fetchWithRetry(`http://127.0.0.1:${site}/index.html`, 1000)).trim(), 'v1')
      // renamed again, keeping the port: the new service takes it over
      await writeFile(
        join(dir, 'grail.yaml'),
        spec([
          ['site2', site],
          ['api', api],
        ]),
      )
      const again = await grail(['apply'], { cwd: dir })
      assert.equal(again.code, 0, again.stderr + again.stdout)
      assert.equal((await fetchWithRetry(`http://127.0.0.1:${site}/index.html`, 1000)).trim(), 'v1')
      assert.deepEqual(await routeNames(), ['local-api', 'local-site2'])
      web = site
    })

    test('removing a published service and applying: its port no longer answers', async () => {
      await writeFile(join(dir, 'grail.yaml'), spec([['site2', web]]))
      const res = await grail(['apply'], { cwd: dir })
      assert.equal(res.code, 0, res.stderr + res.stdout)
      assert.equal(await answers(api), false, `nothing answers on the removed service's port ${api}`)
      assert.equal((await fetchWithRetry(url(), 1000)).trim(), 'v1')
    })

    test('grail down after a rename stops every proxy of the environment: no port answers, no proxy process is left', async () => {
      const before = await proxyProcesses(dir)
      assert.ok(before.length > 0, 'the proxy runs')
      const other = await freePort()
      await writeFile(join(dir, 'grail.yaml'), spec([['renamed', other]]))
      const res = await grail(['down'], { cwd: dir })
      assert.equal(res.code, 0, res.stderr + res.stdout)
      assert.equal(await answers(web), false, 'the running proxy of the old name is gone')
      assert.deepEqual(await proxyProcesses(dir), [])
      if (haproxy) assert.equal(existsSync(join(dir, '.grail/dataplane')), false, 'the data plane is gone')
      else assert.deepEqual(await readdir(join(dir, '.grail/proxy')), [])
    })
  })
