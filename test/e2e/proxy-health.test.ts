// Health-based routing as a user meets it: three replicas under steady GET load; one instance's process
// is SIGSTOPped (it still accepts connections, never answers) and another's health endpoint starts
// answering 500. Both leave the proxy's rotation within two health intervals, no GET of the load fails
// (those caught on the stopped instance are retried elsewhere), `grail status` names the ejected
// instances, and both come back once they pass again. This is the builtin proxy (where HAProxy is
// absent), which it drives through its control socket; dataplane-health.test.ts covers HAProxy.
import assert from 'node:assert/strict'
import { chmod, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createProxyClient } from '../../src/proxy/control-client.js'
import type { ProxyStatus } from '../../src/proxy/daemon-protocol.js'
import { proxyFiles } from '../../src/proxy/supervisor.js'
import { startLoad } from '../helpers/load.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'

const INTERVAL_MS = 1000
process.env.GRAIL_DATAPLANE = 'builtin'

const spec = (port: number) => `project: ph
images:
  web:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      # each instance answers /id with its own id (its hostname), so the load shows who answered
      - cmd: [/bin/sh, -c, "cat /proc/sys/kernel/hostname > /srv/www/id && exec httpd -f -p $PORT -h /srv/www"]
services:
  web:
    image: web
    replicas: 3
    port: 8080
    publish: ${port}
    healthcheck: { http: /cgi-bin/healthz, interval: ${INTERVAL_MS}ms, timeout: 500ms }
    rollout: { healthTimeout: 30s, drain: 300ms }
`

// healthy until /tmp/sick exists in the instance; then 500
const HEALTHZ = `#!/bin/sh
if [ -e /tmp/sick ]; then
  printf 'Status: 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nsick\\n'
else
  printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'
fi
`

/** The one child of an instance's init: the process its `cmd` started (httpd here). */
async function serviceProcess(initPid: number): Promise<number> {
  const children = (await readFile(`/proc/${initPid}/task/${initPid}/children`, 'utf8')).trim().split(/\s+/)
  assert.equal(children.length, 1, `the instance's init has one child: ${children}`)
  const pid = Number(children[0])
  assert.match(await readFile(`/proc/${pid}/cmdline`, 'utf8'), /^httpd\0/)
  return pid
}

interface Status {
  instances: Array<{ id: string; pid: number | null; service: string; health: string }>
  proxies: Array<{
    service: string
    state: string
    detail: string
    ejected?: Array<{ id: string; reason: string }>
  }>
}

describe('the proxy routes by health', () => {
  let dir: string
  let port: number
  let stoppedPid: number | undefined
  let sickId: string | undefined
  const daemon = () =>
    createProxyClient({ socketPath: proxyFiles(join(dir, '.grail/proxy/local-web')).socket, pid: 0 })

  before(async () => {
    port = await freePort()
    dir = await busyboxProject({
      'grail.yaml': spec(port),
      'site/index.html': 'v1\n',
      'site/cgi-bin/healthz': HEALTHZ,
    })
    await chmod(join(dir, 'site/cgi-bin/healthz'), 0o755)
    const res = await grail(['up'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
  })
  after(async () => {
    // a stopped process cannot be stopped for good: continue it first so down can end it
    if (stoppedPid !== undefined) process.kill(stoppedPid, 'SIGCONT')
    await tearDown(dir)
  })

  test('a SIGSTOPped instance and one whose health endpoint answers 500 leave the rotation within two intervals; the load fails no GET', async (t) => {
    const status = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
    const web = status.instances.filter((i) => i.service === 'web')
    assert.equal(web.length, 3)
    type Instance = Status['instances'][0]
    const [stopped, sick, well] = web as [Instance, Instance, Instance]
    sickId = sick.id
    assert.ok(stopped.pid !== null && sick.pid !== null, 'the runtime reports each instance process')
    const url = `http://127.0.0.1:${port}/id`

    // the runtime's init pid is the instance's init (/dev/init); the service's process is its child
    const main = await serviceProcess(stopped.pid)
    const load = startLoad(url, { workers: 16 })
    await sleep(1500)
    process.kill(main, 'SIGSTOP')
    stoppedPid = main
    const stoppedAt = Date.now()
    // written from the host into the instance's root, as an operator's change would be
    await writeFile(`/proc/${sick.pid}/root/tmp/sick`, '')
    const sickAt = Date.now()

    const ejectedAt = new Map<string, number>()
    let last: ProxyStatus | undefined
    for (let i = 0; i < 60 && ejectedAt.size < 2; i++) {
      last = await daemon().status()
      for (const e of last.ejected ?? []) if (!ejectedAt.has(e.id)) ejectedAt.set(e.id, Date.now())
      await sleep(50)
    }
    assert.deepEqual(
      [...(last?.ejected ?? [])].map((e) => e.id).sort(),
      [stopped.id, sick.id].sort(),
      `both broken instances are out of rotation: ${JSON.stringify(last?.ejected)}`,
    )
    const reasons = Object.fromEntries((last?.ejected ?? []).map((e) => [e.id, e.reason]))
    assert.equal(reasons[sick.id], 'HTTP 500')
    assert.match(reasons[stopped.id] ?? '', /timed out|no response within/)
    const inIntervals = (id: string, from: number) => ((ejectedAt.get(id) ?? Date.now()) - from) / INTERVAL_MS
    t.diagnostic(
      `ejected after ${inIntervals(stopped.id, stoppedAt).toFixed(2)} (stopped) and ${inIntervals(sick.id, sickAt).toFixed(2)} (500) intervals`,
    )
    // the acceptance is two intervals; half an interval more absorbs polling and a loaded machine
    assert.ok(inIntervals(stopped.id, stoppedAt) <= 2.5, 'the stopped instance is out within two intervals')
    assert.ok(inIntervals(sick.id, sickAt) <= 2.5, 'the failing instance is out within two intervals')

    const during = await load.stop()
    t.diagnostic(
      `around the break: ${during.ok} ok, ${during.failed} failed, ${during.rate.toFixed(0)} req/s`,
    )
    assert.equal(during.failed, 0, `no GET failed: ${during.errors.slice(0, 5).join('\n')}`)

    const steady = startLoad(url, { workers: 16 })
    await sleep(3000)
    const afterwards = await steady.stop()
    t.diagnostic(
      `after: ${afterwards.ok} ok, ${afterwards.failed} failed, ${afterwards.rate.toFixed(0)} req/s`,
    )
    assert.equal(afterwards.failed, 0, afterwards.errors.slice(0, 5).join('\n'))
    assert.ok(afterwards.ok > 0)
    assert.deepEqual([...new Set(afterwards.bodies)], [well.id], 'only the healthy instance answers')

    const text = await grail(['status'], { cwd: dir })
    assert.match(
      text.stdout,
      new RegExp(
        `proxy local/web on 127\\.0\\.0\\.1:${port}: up \\(pid \\d+\\): 3 backend\\(s\\), 2 out of rotation: `,
      ),
    )
    assert.match(text.stdout, new RegExp(`${sick.id} \\(HTTP 500 since `))
    assert.match(text.stdout, new RegExp(`${stopped.id} \\((timed out|no response within \\d+ ms) since `))
  })

  test('both come back into rotation once they pass their checks again', async () => {
    const web = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir })).instances
    const sick = web.find((i) => i.id === sickId) as Status['instances'][0]
    const url = `http://127.0.0.1:${port}/id`
    if (stoppedPid !== undefined) process.kill(stoppedPid, 'SIGCONT')
    stoppedPid = undefined
    await rm(`/proc/${sick.pid}/root/tmp/sick`)
    for (let i = 0; i < 300 && ((await daemon().status()).ejected ?? []).length > 0; i++) await sleep(100)
    assert.deepEqual((await daemon().status()).ejected, [], 'both readmitted')
    const back = startLoad(url, { workers: 16 })
    await sleep(2000)
    const readmitted = await back.stop()
    assert.equal(readmitted.failed, 0, readmitted.errors.slice(0, 5).join('\n'))
    assert.deepEqual([...new Set(readmitted.bodies)].sort(), web.map((i) => i.id).sort(), 'all three answer')
  })

  test('the routes Grail gives a restarted proxy leave out an instance its own probes count as unhealthy', async () => {
    const web = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir })).instances
    const sick = web.find((i) => i.id === sickId) as Status['instances'][0]
    await writeFile(`/proc/${sick.pid}/root/tmp/sick`, '')
    try {
      // a probe younger than the check's interval is reused by status: ask until a fresh one ran
      let health: string | undefined
      for (let i = 0; i < 10 && health !== 'unhealthy'; i++) {
        await sleep(INTERVAL_MS)
        const seen = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
        health = seen.instances.find((x) => x.id === sick.id)?.health
      }
      assert.equal(health, 'unhealthy', 'Grail counts it unhealthy')
      // the proxy and its keeper gone, and its routes with them: Grail routes from what it knows
      const proxyDir = join(dir, '.grail/proxy/local-web')
      const pidIn = async (f: string) => Number((await readFile(join(proxyDir, f), 'utf8')).trim())
      const daemonPid = await pidIn('pid')
      process.kill(await pidIn('keeper.pid'), 'SIGKILL')
      await sleep(100)
      process.kill(daemonPid, 'SIGKILL')
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(daemonPid, 0)
          await sleep(50)
        } catch {
          break
        }
      }
      await rm(join(proxyDir, 'state.json'))
      const res = await grail(['status'], { cwd: dir })
      assert.match(
        res.stdout,
        /proxy local\/web on .*: restarted \(pid \d+\): .*restarted with 2 backend\(s\)/,
      )
      assert.deepEqual(
        (await daemon().status()).backends.map((b) => b.id).sort(),
        web
          .filter((i) => i.id !== sick.id)
          .map((i) => i.id)
          .sort(),
      )
    } finally {
      await rm(`/proc/${sick.pid}/root/tmp/sick`, { force: true })
    }
  })
})
