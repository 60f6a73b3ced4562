// The HAProxy data plane driven directly, against Debian's haproxy: route changes over the runtime API
// (no reload, pid unchanged), a new route reloads without refusing a connection of the others, kill -9 of
// HAProxy and of its keeper, a port in use, damaged routes, drains, TLS with HTTP/2, the access log with
// hostile request lines, and file modes. The backends are node http servers in this process.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { Agent, createServer, request, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { freePort } from '../../../test/helpers/net.js'
import { startLoad } from '../../../test/helpers/load.js'
import { isAlive } from '../process.js'
import { renderCheckMap, renderConfig, serverArgs } from './config.js'
import type { RouteEntry, RoutesFile } from './files.js'
import { dataPlaneFiles, ensureRoute, listRoutes, routeHealth, stopDataPlane, stopRoute } from './index.js'
import { parseServerStats } from './runtime-api.js'

const run = promisify(execFile)

describe('renderConfig', () => {
  const routes: RoutesFile = {
    version: 1,
    generation: 3,
    routes: {
      'prod.web': {
        environment: 'prod',
        service: 'web',
        listen: { host: '127.0.0.1', port: 8080 },
        mode: 'http',
        drainTimeoutMs: 2000,
        responseTimeoutMs: 30000,
        accessLog: false,
        check: { type: 'http', expectStatus: 200, timeout: 500 },
        servers: [
          {
            id: 'web-r1-a',
            host: '127.0.0.1',
            port: 9000,
            check: {
              type: 'http',
              path: '/healthz',
              expectStatus: 200,
              port: 9001,
              interval: 1000,
              timeout: 500,
            },
          },
          {
            id: 'web-r1-b',
            host: '127.0.0.1',
            port: 9002,
            check: { type: 'tcp', port: 9002, interval: 1000, timeout: 500 },
          },
        ],
      },
      'prod.api': {
        environment: 'prod',
        service: 'api',
        listen: { host: '127.0.0.1', port: 8081 },
        mode: 'http',
        drainTimeoutMs: 2000,
        responseTimeoutMs: 30000,
        accessLog: true,
        servers: [],
      },
    },
  }

  test('is deterministic, leaves out routes without a socket, and checks every server', () => {
    const a = renderConfig(routes, {
      socket: '/s',
      fds: { 'prod.web': 3 },
      mapOf: (k: string) => `/m/${k}.map`,
    })
    assert.equal(
      a,
      renderConfig(routes, { socket: '/s', fds: { 'prod.web': 3 }, mapOf: (k: string) => `/m/${k}.map` }),
    )
    assert.match(a, /bind fd@3\n/)
    assert.doesNotMatch(a, /prod\.api/)
    // each server GETs its own path, from the route's map
    assert.match(a, /http-check send meth GET uri-lf "%\[srv_name,map\(\/m\/prod\.web\.map,\/\)\]"/)
    assert.match(
      a,
      /server web-r1-a 127\.0\.0\.1:9000 pool-max-conn -1 pool-purge-delay 5s check port 9001 inter 1000ms fastinter 250ms fall 1 rise 2 observe layer4/,
    )
    // a server that came with a TCP check gets no HTTP check it was never judged by
    assert.match(a, /server web-r1-b 127\.0\.0\.1:9002 pool-max-conn -1 pool-purge-delay 5s\n/)
    assert.equal(renderCheckMap(routes.routes['prod.web'] as RouteEntry), 'web-r1-a /healthz\n')
    assert.match(a, /stats socket \/s mode 600 level admin/)
    // no access log asked for: none written
    assert.doesNotMatch(a, /log stdout/)
    const b = renderConfig(routes, {
      socket: '/s',
      fds: { 'prod.web': 3, 'prod.api': 4 },
      mapOf: (k: string) => `/m/${k}.map`,
    })
    assert.match(b, /log stdout format raw/)
    assert.match(b, /frontend in\.prod\.api[\s\S]*log-format/)
  })

  test('a server without a health check of its own gets a TCP connect check', () => {
    assert.match(
      serverArgs({ id: 's', host: '127.0.0.1', port: 7 }, undefined),
      /^127\.0\.0\.1:7 pool-max-conn -1 pool-purge-delay 5s check port 7 inter 2000ms/,
    )
  })

  test('parseServerStats reads server rows only', () => {
    const csv =
      '# pxname,svname,qcur,scur,status,lastchg,check_status,check_desc,check_code,type,addr\n' +
      'b,FRONTEND,,3,OPEN,,,,,0,\n' +
      'b,s1,0,2,DOWN,12,*L4CON,Connection refused,,2,127.0.0.1:9\n' +
      'b,BACKEND,0,2,DOWN,12,,,,1,\n'
    assert.deepEqual(parseServerStats(csv), [
      {
        backend: 'b',
        server: 's1',
        status: 'DOWN',
        current: 2,
        lastChange: 12,
        checkStatus: 'L4CON',
        checkDescription: 'Connection refused',
        checkCode: '',
        address: '127.0.0.1:9',
      },
    ])
  })
})

/** A backend answering `name` (and `/slow?ms=N` after N ms), keeping connections alive. */
async function backend(name: string): Promise<{ port: number; server: Server }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const ms = Number(url.searchParams.get('ms') ?? 0)
    if (url.pathname === '/fail') res.statusCode = 500
    setTimeout(() => res.end(`${name}\n`), ms)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return { port: (server.address() as AddressInfo).port, server }
}

/** One request on a fresh connection; the body, or the error code. */
function get(port: number, path = '/'): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 10_000 }, (res) => {
      let body = ''
      res.on('data', (c) => {
        body += c
      })
      res.on('end', () => resolve(body.trim()))
      res.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`))
    })
    req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`))
    req.end()
  })
}

async function eventually(what: string, fn: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`)
    await sleep(50)
  }
}

describe('the HAProxy data plane', () => {
  let root: string
  let dir: string
  const backends: Array<{ port: number; server: Server }> = []
  let webPort: number
  const state = async () =>
    JSON.parse(await readFile(dataPlaneFiles(dir).state, 'utf8')) as { pid: number; keeper: number }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'grail-haproxy-'))
    dir = join(root, 'dataplane')
    for (const n of ['a', 'b', 'c']) backends.push(await backend(n))
    webPort = await freePort()
  })
  after(async () => {
    await stopDataPlane(dir, { graceMs: 3000 })
    for (const b of backends) b.server.close()
    await rm(root, { recursive: true, force: true })
  })
  const b = (i: number) => ({
    id: `web-${'abc'[i]}`,
    host: '127.0.0.1',
    port: (backends[i] as { port: number }).port,
  })
  const web = () =>
    ensureRoute(dir, {
      environment: 'prod',
      service: 'web',
      listenHost: '127.0.0.1',
      listenPort: webPort,
      mode: 'http',
      drainTimeoutMs: 5000,
    })

  test('route changes go over the runtime API: the same HAProxy serves before and after', async () => {
    const route = await web()
    assert.deepEqual(await route.setBackends([b(0)]), { drained: [], forced: [] })
    assert.equal(await get(webPort), 'a')
    const { pid } = await state()
    assert.deepEqual(await route.setBackends([b(1), b(2)]), { drained: ['web-a'], forced: [] })
    const seen = new Set<string>()
    for (let i = 0; i < 6; i++) seen.add(await get(webPort))
    assert.deepEqual([...seen].sort(), ['b', 'c'])
    assert.equal((await state()).pid, pid, 'no reload for a route change')
    const health = await routeHealth(dir, 'prod', 'web')
    assert.equal(health.state, 'up')
    assert.equal(health.state === 'up' && health.backends, 2)
    assert.deepEqual(
      (await listRoutes(dir)).map((r) => r.servers.map((s) => s.id)),
      [['web-b', 'web-c']],
    )
  })

  test('each server keeps the check it came with: a new failing check ejects only its own server, without a reload', async () => {
    const route = await web()
    const http = (path: string) => ({
      type: 'http' as const,
      path,
      expectStatus: 200,
      interval: 200,
      timeout: 150,
    })
    await route.setBackends([{ ...b(1), check: { ...http('/ok-b'), port: b(1).port } }])
    // the route had servers without checks: the first checked one sets how the route checks (a reload)
    const { pid } = await state()
    await route.setBackends([
      { ...b(1), check: { ...http('/fail'), port: b(1).port } },
      { ...b(2), check: { ...http('/fail'), port: b(2).port } },
    ])
    await eventually('c out of rotation', async () => {
      const h = await routeHealth(dir, 'prod', 'web')
      return h.state === 'up' && h.ejected.map((e) => e.id).join() === 'web-c'
    })
    const h = await routeHealth(dir, 'prod', 'web')
    assert.equal(h.state === 'up' && h.ejected[0]?.reason, 'HTTP 500')
    // b was put in rotation with /ok-b and keeps it: still in rotation, answering
    for (let i = 0; i < 4; i++) assert.equal(await get(webPort), 'b')
    assert.equal((await state()).pid, pid, 'no reload')
    // a server that came with a TCP check joins an HTTP-checked route unchecked, still without a reload
    await route.setBackends([
      { ...b(1), check: { ...http('/ok-b'), port: b(1).port } },
      { ...b(0), check: { type: 'tcp', port: b(0).port, interval: 200, timeout: 150 } },
    ])
    const seen = new Set<string>()
    for (let i = 0; i < 6; i++) seen.add(await get(webPort))
    assert.deepEqual([...seen].sort(), ['a', 'b'])
    assert.equal((await state()).pid, pid, 'no reload')
    // every server checked by TCP: the route's kind of check changes, which reloads
    await route.setBackends([
      { ...b(0), check: { type: 'tcp', port: b(0).port, interval: 200, timeout: 150 } },
    ])
    assert.notEqual((await state()).pid, pid)
    assert.equal(await get(webPort), 'a')
  })

  test('a drained server finishes the request it has in flight', async () => {
    const route = await web()
    await route.setBackends([b(1), b(2)])
    const slow = get(webPort, '/slow?ms=1500')
    await sleep(300)
    // whichever of b and c took it, both are drained
    const swap = await route.setBackends([b(0)])
    assert.deepEqual(swap.drained.sort(), ['web-b', 'web-c'])
    assert.deepEqual(swap.forced, [])
    assert.match(await slow, /^[bc]$/)
    assert.equal(await get(webPort), 'a')
  })

  test('a new route reloads HAProxy without refusing a connection of the routes it has (load of 4 keep-alive clients)', async () => {
    const load = startLoad(`http://127.0.0.1:${webPort}/`, { workers: 4 })
    await sleep(500)
    const { pid } = await state()
    const apiPort = await freePort()
    const api = await ensureRoute(dir, {
      environment: 'prod',
      service: 'api',
      listenHost: '127.0.0.1',
      listenPort: apiPort,
      mode: 'http',
    })
    await api.setBackends([b(2)])
    assert.equal(await get(apiPort), 'c')
    assert.notEqual((await state()).pid, pid, 'a new HAProxy took over')
    await sleep(500)
    const report = await load.stop()
    // nothing is refused: the sockets stay open. The old HAProxy closes its idle keep-alive connections
    // (so that it never routes a request after the reload): a worker that sent a request on one at that
    // instant sees it closed, at most once per worker's connection
    assert.ok(!report.errors.some((e) => e.includes('ECONNREFUSED')), report.errors.slice(0, 3).join('\n'))
    assert.ok(report.failed <= 4, `${report.failed} failed: ${report.errors.slice(0, 3).join('\n')}`)
    assert.equal(await get(webPort), 'a')
    // and the route goes again: its port closes, the other serves on
    await stopRoute(dir, 'prod', 'api')
    assert.match(await get(apiPort), /^error ECONNREFUSED/)
    assert.equal(await get(webPort), 'a')
  })

  test('after a reload, a connection the old HAProxy still serves follows route changes too', async () => {
    const route = await web()
    await route.setBackends([b(0)])
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const viaAgent = () =>
      new Promise<string>((resolve, reject) => {
        request({ host: '127.0.0.1', port: webPort, agent }, (res) => {
          let body = ''
          res.on('data', (c) => {
            body += c
          })
          res.on('end', () => resolve(body.trim()))
        })
          .on('error', reject)
          .end()
      })
    assert.equal(await viaAgent(), 'a')
    const old = await state()
    const otherPort = await freePort()
    await ensureRoute(dir, {
      environment: 'prod',
      service: 'other',
      listenHost: '127.0.0.1',
      listenPort: otherPort,
      mode: 'http',
    })
    const now = await state()
    assert.notEqual(now.pid, old.pid)
    await route.setBackends([b(1)])
    // the idle connection was the old process's, which closed it: the next request must not reach the drained a
    assert.equal(await viaAgent(), 'b')
    agent.destroy()
    await eventually('the old HAProxy gone', async () => !(await isAlive(old.pid)))
    await stopRoute(dir, 'prod', 'other')
    await route.setBackends([b(0)])
  })

  test('kill -9 of HAProxy: its keeper starts another with the same routes; no connection is refused meanwhile', async () => {
    const { pid, keeper } = await state()
    const load = startLoad(`http://127.0.0.1:${webPort}/`, { workers: 4 })
    await sleep(500)
    process.kill(pid, 'SIGKILL')
    await eventually('a new HAProxy', async () => (await state()).pid !== pid)
    await sleep(500)
    const report = await load.stop()
    // only what was in flight on the dead process can fail; the port never closed
    assert.ok(report.failed <= 8, `${report.failed} failed: ${report.errors.slice(0, 3).join('\n')}`)
    assert.ok(!report.errors.some((e) => e.includes('ECONNREFUSED')), report.errors.slice(0, 3).join('\n'))
    assert.equal((await state()).keeper, keeper)
    assert.equal(await get(webPort), 'a')
  })

  test('kill -9 of the keeper: HAProxy serves on; the next ensureRoute adopts it without a refused connection', async () => {
    const { pid, keeper } = await state()
    process.kill(keeper, 'SIGKILL')
    await eventually('the keeper gone', async () => !(await isAlive(keeper)))
    assert.equal(await get(webPort), 'a')
    assert.equal((await routeHealth(dir, 'prod', 'web')).state, 'unsupervised')
    const load = startLoad(`http://127.0.0.1:${webPort}/`, { workers: 4 })
    await sleep(300)
    await web()
    await sleep(300)
    const report = await load.stop()
    assert.equal(report.failed, 0, report.errors.slice(0, 3).join('\n'))
    const now = await state()
    assert.notEqual(now.keeper, keeper)
    assert.equal(now.pid, pid, 'the same HAProxy serves on')
    assert.equal((await routeHealth(dir, 'prod', 'web')).state, 'up')
    // the adopted HAProxy dies: its new keeper starts another, with the routes
    process.kill(pid, 'SIGKILL')
    await eventually('a new HAProxy', async () => (await state()).pid !== pid)
    assert.equal(await get(webPort), 'a')
    assert.equal((await state()).keeper, now.keeper)
    // adopted again, then a new route: the reload replaces the adopted HAProxy with one of the keeper's
    const again = await state()
    process.kill(again.keeper, 'SIGKILL')
    await eventually('the keeper gone', async () => !(await isAlive(again.keeper)))
    await web()
    const otherPort = await freePort()
    const other = await ensureRoute(dir, {
      environment: 'prod',
      service: 'adopt',
      listenHost: '127.0.0.1',
      listenPort: otherPort,
      mode: 'http',
    })
    await other.setBackends([b(1)])
    assert.equal(await get(otherPort), 'b')
    assert.equal(await get(webPort), 'a')
    assert.notEqual((await state()).pid, again.pid)
    await eventually('the adopted HAProxy gone', async () => !(await isAlive(again.pid)))
    await stopRoute(dir, 'prod', 'adopt')
  })

  test('a port another process holds: PROXY_PORT_IN_USE, and the route is not kept', async () => {
    const holder = createServer()
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()))
    const port = (holder.address() as AddressInfo).port
    try {
      await assert.rejects(
        ensureRoute(dir, {
          environment: 'prod',
          service: 'busy',
          listenHost: '127.0.0.1',
          listenPort: port,
          mode: 'http',
        }),
        (err: Error & { code?: string }) =>
          err.code === 'PROXY_PORT_IN_USE' && err.message.includes(String(port)),
      )
      assert.deepEqual(
        (await listRoutes(dir)).map((r) => r.service),
        ['web'],
      )
      assert.equal(await get(webPort), 'a')
    } finally {
      holder.close()
    }
  })

  test('TLS termination with HTTP/2 and HTTP/1.1, and an access log of JSON lines whatever the request', async () => {
    const certDir = join(root, 'cert')
    await run('mkdir', ['-p', certDir])
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(certDir, 'key.pem'),
      '-out',
      join(certDir, 'cert.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
    ])
    const port = await freePort()
    const tls = { certificate: join(certDir, 'cert.pem'), key: join(certDir, 'key.pem') }
    const route = await ensureRoute(dir, {
      environment: 'prod',
      service: 'tls',
      listenHost: '127.0.0.1',
      listenPort: port,
      mode: 'http',
      tls,
      accessLog: true,
    })
    await route.setBackends([b(1)])
    const curl = async (...args: string[]) =>
      (await run('curl', ['-sk', '-w', ' %{http_version}', ...args])).stdout
    assert.equal(await curl('--http2', `https://127.0.0.1:${port}/`), 'b\n 2')
    assert.equal(await curl('--http1.1', `https://127.0.0.1:${port}/`), 'b\n 1.1')
    for (const path of ['/a]b[c', '/q\\"x', '/%00%0a', '/x\\y', '/\u00e9']) {
      await new Promise<void>((resolve) => {
        const s = connect(webPort, '127.0.0.1', () => s.end(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`))
        s.on('data', () => {})
        s.on('close', () => resolve())
        s.on('error', () => resolve())
      })
    }
    // the web route logs nothing; the tls route logs its two requests
    await sleep(300)
    const files = dataPlaneFiles(dir)
    const lines = (await readFile(files.accessLog, 'utf8')).trim().split('\n')
    const entries = lines.map((l) => JSON.parse(l) as { frontend: string; status: number; version: string })
    assert.deepEqual(
      entries.map((e) => [e.frontend, e.status, e.version]),
      [
        ['in.prod.tls', 200, 'HTTP/2.0'],
        ['in.prod.tls', 200, 'HTTP/1.1'],
      ],
    )
    // hostile request lines on a logging route
    await stopRoute(dir, 'prod', 'web')
    const logged = await ensureRoute(dir, {
      environment: 'prod',
      service: 'web',
      listenHost: '127.0.0.1',
      listenPort: webPort,
      mode: 'http',
      accessLog: true,
    })
    await logged.setBackends([b(0)])
    for (const path of ['/a]b[c', '/q\\"x', '/x\\y', '/%00']) {
      await new Promise<void>((resolve) => {
        const s = connect(webPort, '127.0.0.1', () => s.end(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`))
        s.on('data', () => {})
        s.on('close', () => resolve())
      })
    }
    await sleep(300)
    const all = (await readFile(files.accessLog, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { uri: string })
    assert.deepEqual(
      all.slice(-4).map((e) => e.uri),
      ['/a]b[c', '/q\\"x', '/x\\y', '/%00'],
    )
    // secrets and routes: readable by their owner only
    for (const f of [
      files.routes,
      files.config,
      files.state,
      files.accessLog,
      join(files.tlsDir, 'prod.tls.pem'),
    ]) {
      assert.equal((await stat(f)).mode & 0o077, 0, `${f} is private`)
    }
    assert.equal((await stat(files.dir)).mode & 0o077, 0)
    // a renewed certificate HAProxy refuses: named, and the one in place serves on, also after a restart
    const good = await readFile(tls.certificate, 'utf8')
    await writeFile(tls.certificate, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    try {
      await assert.rejects(
        ensureRoute(dir, {
          environment: 'prod',
          service: 'tls',
          listenHost: '127.0.0.1',
          listenPort: port,
          mode: 'http',
          tls,
          accessLog: true,
        }),
        (err: Error & { code?: string }) => err.code === 'PROXY_TLS',
      )
      assert.equal(await curl('--http1.1', `https://127.0.0.1:${port}/`), 'b\n 1.1')
      const before = await state()
      process.kill(before.pid, 'SIGKILL')
      await eventually('a new HAProxy', async () => (await state()).pid !== before.pid)
      assert.equal(await curl('--http1.1', `https://127.0.0.1:${port}/`), 'b\n 1.1')
    } finally {
      await writeFile(tls.certificate, good)
    }
    await stopRoute(dir, 'prod', 'tls')
  })

  test('a certificate HAProxy cannot load fails with PROXY_TLS naming it, and nothing is saved', async () => {
    const bad = join(root, 'bad')
    await run('mkdir', ['-p', bad])
    await writeFile(join(bad, 'cert.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    await writeFile(join(bad, 'key.pem'), '-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n')
    const before = await readFile(dataPlaneFiles(dir).routes, 'utf8')
    const { pid } = await state()
    const port = await freePort()
    const tls = { certificate: join(bad, 'cert.pem'), key: join(bad, 'key.pem') }
    await assert.rejects(
      ensureRoute(dir, {
        environment: 'prod',
        service: 'badtls',
        listenHost: '127.0.0.1',
        listenPort: port,
        mode: 'http',
        tls,
      }),
      (err: Error & { code?: string }) => err.code === 'PROXY_TLS' && err.message.includes(tls.certificate),
    )
    assert.equal(await readFile(dataPlaneFiles(dir).routes, 'utf8'), before)
    assert.equal((await state()).pid, pid, 'no reload')
    await assert.rejects(
      stat(join(dataPlaneFiles(dir).tlsDir, 'prod.badtls.pem')),
      'no copy of the refused key is left',
    )
    // and a key that is missing: named
    await assert.rejects(
      ensureRoute(dir, {
        environment: 'prod',
        service: 'badtls',
        listenHost: '127.0.0.1',
        listenPort: port,
        mode: 'http',
        tls: { ...tls, key: join(bad, 'nope.pem') },
      }),
      (err: Error & { code?: string }) => err.code === 'PROXY_TLS' && err.message.includes('nope.pem'),
    )
  })

  test('a listen address that is not one is refused before it reaches the configuration', async () => {
    await assert.rejects(
      ensureRoute(dir, {
        environment: 'prod',
        service: 'evil',
        listenHost: '127.0.0.1:1\n  lua-load /x',
        listenPort: 1234,
        mode: 'http',
      }),
      (err: Error & { code?: string }) => err.code === 'PROXY_LISTEN' && err.message.includes('lua-load'),
    )
    assert.ok(!(await listRoutes(dir)).some((r) => r.service === 'evil'))
  })

  test('a damaged routes file is named, with how to repair it', async () => {
    const files = dataPlaneFiles(dir)
    const good = await readFile(files.routes, 'utf8')
    await writeFile(files.routes, good.slice(0, 20))
    try {
      await assert.rejects(
        web(),
        (err: Error & { code?: string; hint?: string }) =>
          err.code === 'PROXY_BAD_STATE' &&
          err.message.includes(files.routes) &&
          (err.hint ?? '').includes('grail down'),
      )
    } finally {
      await writeFile(files.routes, good, { mode: 0o600 })
    }
  })

  test('stopping the last route stops the data plane: no process, no directory', async () => {
    const { pid, keeper } = await state()
    await stopRoute(dir, 'prod', 'web')
    assert.equal(await isAlive(pid), false)
    assert.equal(await isAlive(keeper), false)
    await assert.rejects(stat(dir))
    assert.match(await get(webPort), /^error ECONNREFUSED/)
  })
})
