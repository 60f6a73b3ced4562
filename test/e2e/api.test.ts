// The HTTP API of `grail serve` against a real project on the local provider: every write refuses a
// missing, wrong, read-only or revoked token and changes nothing; reads need a token unless insecure
// reads on loopback; the OpenAPI document validates and real answers match its schemas; apply,
// rollback and revoke driven through the API show in `grail status`; the event stream hears a CLI
// command; the dashboard's files are served safely; TLS works.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Validator } from '@seriousme/openapi-schema-validator'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { GrailError } from '../../src/errors.js'
import { EventStreams } from '../../src/server/http/event-stream.js'
import { apiRoutes, startHttpServer } from '../../src/server/http/index.js'
import { acquireLock, releaseLock } from '../../src/state/index.js'
import { httpCall, openSse } from '../helpers/http-client.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'
import { type TestContext, testContext } from '../helpers/server-context.js'
import { httpdImages } from '../helpers/specs.js'

const SPEC = `project: apitest
${httpdImages()}services:
  web:
    image: web
    port: 8080
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
    rollout: { drain: 100ms }
`

interface Status {
  instances: Array<{ id: string; service: string; release: number; image: string; health: string }>
  releases: Array<{ number: number; status: string }>
}

interface Operation {
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>
}

/** The document's `#/components/schemas/X` references, as references into the schema Ajv holds. */
function rewriteRefs<T>(schema: T): T {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"grail#/$defs/')) as T
}

describe('HTTP API (local provider)', () => {
  let dir: string
  let ctx: TestContext
  let server: { url: string; close(): Promise<void> }
  const tokens: Record<'write' | 'read' | 'revoked', string> = { write: '', read: '', revoked: '' }
  let doc: Record<string, unknown>
  let ajv: InstanceType<typeof Ajv2020>

  const status = async () => parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
  const token = async (name: string, scope: string) =>
    parseJson<{ token: string }>(
      await grail(['--json', 'token', 'create', '--name', name, '--scope', scope], { cwd: dir }),
    ).token

  /** Everything a write could change: events, releases, instances, images, pins, tokens, locks, hotfixes. */
  const snapshot = () =>
    JSON.stringify(
      ['events', 'releases', 'instances', 'images', 'pins', 'tokens', 'locks', 'hotfixes'].map((t) =>
        ctx.db.prepare(`SELECT * FROM ${t} ORDER BY rowid`).all(),
      ),
    )

  /** Checks a JSON answer against the schema the document gives for its route and status. */
  const matchesDoc = (path: string, method: string, code: number, body: unknown) => {
    const paths = doc.paths as Record<string, Record<string, Operation>>
    const op = paths[path]?.[method.toLowerCase()]
    assert.ok(op, `${method} ${path} is in the document`)
    const schema = op.responses[String(code)]?.content?.['application/json']?.schema
    assert.ok(schema, `${method} ${path} documents a JSON answer for ${code}`)
    const validate = ajv.compile(rewriteRefs(schema))
    assert.ok(
      validate(body),
      `${method} ${path} ${code}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 2000)}`,
    )
  }

  before(async () => {
    dir = await busyboxProject({ 'grail.yaml': SPEC, 'site/index.html': 'one\n' })
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr)
    // v2 is built, not deployed: the API's apply deploys it
    await writeFile(join(dir, 'site/index.html'), 'two\n')
    const build = await grail(['build'], { cwd: dir })
    assert.equal(build.code, 0, build.stderr)
    tokens.write = await token('writer', 'write')
    tokens.read = await token('reader', 'read')
    tokens.revoked = await token('old', 'write')
    assert.equal((await grail(['token', 'revoke', 'old'], { cwd: dir })).code, 0)
    ctx = await testContext(dir)
    const dashboard = join(dir, 'dashboard')
    await mkdir(join(dashboard, 'assets'), { recursive: true })
    await writeFile(join(dashboard, 'index.html'), '<!doctype html><title>Grail</title>')
    await writeFile(join(dashboard, 'assets', 'app.js'), 'console.log(1)\n')
    await writeFile(join(dir, 'secret.txt'), 'not for the web')
    server = await startHttpServer(ctx, {
      host: '127.0.0.1',
      port: 0,
      insecureRead: false,
      dashboardDir: dashboard,
      heartbeatMs: 200,
    })
    doc = (await httpCall(`${server.url}/api/openapi.json`)).json as Record<string, unknown>
    ajv = new Ajv2020({ strict: false, allErrors: true })
    addFormats.default(ajv)
    const schemas = (doc.components as { schemas: Record<string, unknown> }).schemas
    ajv.addSchema({ $id: 'grail', $defs: rewriteRefs(schemas) })
  })
  /** The write routes of the server's own table, with their parameters filled in and a valid body. */
  const writes = () =>
    apiRoutes(ctx, { streams: new EventStreams(), heartbeatMs: 1000, driftCache: new Map() })
      .filter((r) => r.access === 'write')
      .map((r) => ({
        method: r.method,
        path: r.path,
        url: `${server.url}${r.path.replace('{env}', 'local').replace('{svc}', 'web').replace('{name}', 'web').replace('{version}', '1')}`,
        body: { reason: 'test', ...(r.body?.from ? { from: 'local' } : {}) },
      }))

  test('the OpenAPI document validates and describes every route the server has', async () => {
    const res = await new Validator().validate(doc)
    assert.equal(res.valid, true, JSON.stringify(res.errors, null, 2))
    const paths = doc.paths as Record<string, Record<string, unknown>>
    const table = apiRoutes(ctx, { streams: new EventStreams(), heartbeatMs: 1000, driftCache: new Map() })
    assert.deepEqual(
      table.map((r) => `${r.method} ${r.path}`).sort(),
      Object.entries(paths)
        .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
        .sort(),
    )
    assert.equal(writes().length, 7)
  })

  test('every write refuses a missing, wrong, read-only or revoked token, and changes nothing', async () => {
    const before = snapshot()
    const asked = ctx.reconcileRequests.length
    for (const w of writes()) {
      for (const [what, tok, want] of [
        ['no token', undefined, 401],
        ['a wrong token', 'grail_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 401],
        ['not a bearer header', undefined, 401],
        ['a revoked token', tokens.revoked, 401],
        ['a read token', tokens.read, 403],
      ] as const) {
        const res = await httpCall(w.url, {
          method: w.method,
          body: w.body,
          ...(tok ? { token: tok } : {}),
          ...(what === 'not a bearer header' ? { headers: { Authorization: `Basic ${tokens.write}` } } : {}),
        })
        assert.equal(res.status, want, `${w.method} ${w.path} with ${what}: ${res.text}`)
        const err = (res.json as { error: { code: string } }).error
        assert.equal(err.code, want === 401 ? 'API_UNAUTHORIZED' : 'API_FORBIDDEN')
        if (want === 401) assert.equal(res.headers['www-authenticate'], 'Bearer realm="grail"')
        matchesDoc(w.path, w.method, want, res.json)
      }
    }
    assert.equal(snapshot(), before, 'state and the event log are as they were')
    assert.equal(ctx.reconcileRequests.length, asked, 'no reconcile was asked for')
  })

  test('reads need a read or write token; their answers match the document', async () => {
    const noToken = await httpCall(`${server.url}/api/v1/environments`)
    assert.equal(noToken.status, 401)
    assert.equal(noToken.headers['www-authenticate'], 'Bearer realm="grail"')
    assert.equal((await httpCall(`${server.url}/metrics`)).status, 401)
    assert.equal((await httpCall(`${server.url}/api/v1/events/stream`)).status, 401)
    assert.equal((await httpCall(`${server.url}/api/v1/images`, { token: tokens.revoked })).status, 401)
    const gets: Array<[string, string]> = [
      ['/api/v1/environments', '/api/v1/environments'],
      ['/api/v1/environments/{env}/status', '/api/v1/environments/local/status'],
      ['/api/v1/environments/{env}/instances', '/api/v1/environments/local/instances'],
      ['/api/v1/environments/{env}/services', '/api/v1/environments/local/services'],
      ['/api/v1/environments/{env}/releases', '/api/v1/environments/local/releases'],
      ['/api/v1/environments/{env}/plan', '/api/v1/environments/local/plan'],
      ['/api/v1/environments/{env}/drift', '/api/v1/environments/local/drift'],
      ['/api/v1/hotfixes', '/api/v1/hotfixes'],
      ['/api/v1/images', '/api/v1/images'],
      ['/api/v1/images/{name}', '/api/v1/images/web'],
      ['/api/v1/events', '/api/v1/events?limit=2'],
      ['/api/v1/reconciler', '/api/v1/reconciler'],
      ['/api/openapi.json', '/api/openapi.json'],
    ]
    ctx.setStats([
      {
        environment: 'local',
        passes: 3,
        lastAt: new Date().toISOString(),
        lastMs: 12,
        totalMs: 40,
        applied: { missing: 1 },
        rollouts: { ok: 1, failed: 0 },
        lastError: null,
      },
    ])
    for (const [path, url] of gets) {
      for (const tok of [tokens.read, tokens.write]) {
        const res = await httpCall(`${server.url}${url}`, { token: tok })
        assert.equal(res.status, 200, `${url}: ${res.text}`)
        assert.match(String(res.headers['content-type']), /^application\/json/)
        matchesDoc(path, 'GET', 200, res.json)
      }
    }
    // the same shapes as the CLI's --json, from the same functions
    const api = (await httpCall(`${server.url}/api/v1/images`, { token: tokens.read })).json
    assert.deepEqual(api, parseJson(await grail(['--json', 'images'], { cwd: dir })))
    const plan = (await httpCall(`${server.url}/api/v1/environments/local/plan`, { token: tokens.read })).json
    assert.deepEqual(plan, parseJson(await grail(['--json', 'plan'], { cwd: dir })))
    const page = (await httpCall(`${server.url}/api/v1/events?limit=2`, { token: tokens.read })).json as {
      events: Array<{ id: number }>
      next: number
    }
    assert.equal(page.events.length, 2)
    assert.ok((page.events[0]?.id ?? 0) > (page.events[1]?.id ?? 0), 'newest first')
    const next = (
      await httpCall(`${server.url}/api/v1/events?limit=2&before=${page.next}`, { token: tokens.read })
    ).json as { events: Array<{ id: number }> }
    assert.ok((next.events[0]?.id ?? 0) < (page.events[1]?.id ?? 0) + 1)
    // errors have the CLI's --json error shape and a status by code
    for (const [url, want, code] of [
      ['/api/v1/environments/nosuch/status', 404, 'UNKNOWN_ENVIRONMENT'],
      ['/api/v1/images/nosuch', 404, 'UNKNOWN_IMAGE'],
      ['/api/v1/events?limit=0', 400, 'API_BAD_REQUEST'],
      ['/api/v1/nothing', 404, 'API_NOT_FOUND'],
    ] as const) {
      const res = await httpCall(`${server.url}${url}`, { token: tokens.read })
      assert.equal(res.status, want, url)
      assert.equal((res.json as { error: { code: string } }).error.code, code)
    }
  })

  test('a write with a bad body is refused before anything is done (400, 413, 415)', async () => {
    // a first allowed request records the token's use; after it nothing may change
    assert.equal((await httpCall(`${server.url}/api/v1/images`, { token: tokens.write })).status, 200)
    const before = snapshot()
    const url = `${server.url}/api/v1/environments/local/apply`
    const cases: Array<[string, Parameters<typeof httpCall>[1], number, RegExp]> = [
      ['no reason', { body: {} }, 400, /"reason"/],
      ['an empty reason', { body: { reason: '' } }, 400, /"reason"/],
      ['an unknown key', { body: { reason: 'x', force: true } }, 400, /unknown key "force"/],
      [
        'not JSON',
        { rawBody: '{"reason":', headers: { 'Content-Type': 'application/json' } },
        400,
        /not JSON/,
      ],
      ['an array', { body: [1] }, 400, /not a JSON object/],
      [
        'not application/json',
        { rawBody: 'reason=x', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } },
        415,
        /not application\/json/,
      ],
      ['over 64 KiB', { body: { reason: 'x'.repeat(70_000) } }, 413, /64 KiB/],
    ]
    for (const [what, opts, want, message] of cases) {
      const res = await httpCall(url, { method: 'POST', token: tokens.write, ...opts })
      assert.equal(res.status, want, `${what}: ${res.text}`)
      assert.match((res.json as { error: { message: string } }).error.message, message)
    }
    const rb = await httpCall(`${server.url}/api/v1/environments/local/services/web/rollback`, {
      method: 'POST',
      token: tokens.write,
      body: { reason: 'x', release: 'one' },
    })
    assert.equal(rb.status, 400)
    assert.match(
      (rb.json as { error: { message: string } }).error.message,
      /"release" must be a whole number/,
    )
    const promote = await httpCall(`${server.url}/api/v1/environments/local/services/web/promote`, {
      method: 'POST',
      token: tokens.write,
      body: { reason: 'x' },
    })
    assert.equal(promote.status, 400)
    assert.match((promote.json as { error: { message: string } }).error.message, /no "from"/)
    assert.equal(snapshot(), before)
  })

  test('a write while another process holds the apply lock is 409 naming the holder, and does nothing', async () => {
    // pid 1 is alive on this host: the lock is not stale
    acquireLock(ctx.db, 'apply', { pid: 1, holder: 'someone-else' })
    try {
      const before = snapshot()
      const res = await httpCall(`${server.url}/api/v1/environments/local/apply`, {
        method: 'POST',
        token: tokens.write,
        body: { reason: 'while locked' },
      })
      assert.equal(res.status, 409, res.text)
      const err = (res.json as { error: { code: string; message: string } }).error
      assert.equal(err.code, 'LOCKED')
      assert.match(err.message, /held by someone-else \(pid 1/)
      matchesDoc('/api/v1/environments/{env}/apply', 'POST', 409, res.json)
      assert.equal(snapshot(), before)
    } finally {
      releaseLock(ctx.db, 'apply', 1)
    }
  })

  test('apply, rollback and revoke through the API; grail status --json shows each result', async () => {
    const before = await status()
    assert.deepEqual([...new Set(before.instances.map((i) => i.release))], [1])
    const post = (path: string, body: Record<string, unknown>) =>
      httpCall(`${server.url}${path}`, { method: 'POST', token: tokens.write, body })

    const apply = await post('/api/v1/environments/local/apply', { reason: 'ship v2' })
    assert.equal(apply.status, 200, apply.text)
    matchesDoc('/api/v1/environments/{env}/apply', 'POST', 200, apply.json)
    const deployed = apply.json as { results: Array<{ ok: boolean; release: { number: number } }> }
    assert.deepEqual(
      deployed.results.map((r) => [r.release.number, r.ok]),
      [[2, true]],
    )
    let now = await status()
    assert.deepEqual([...new Set(now.instances.map((i) => i.image))], ['web v2'])
    assert.ok(now.instances.every((i) => i.release === 2 && i.health === 'healthy'))

    const rollback = await post('/api/v1/environments/local/services/web/rollback', { reason: 'v2 is bad' })
    assert.equal(rollback.status, 200, rollback.text)
    matchesDoc('/api/v1/environments/{env}/services/{svc}/rollback', 'POST', 200, rollback.json)
    assert.equal((rollback.json as { release: { number: number }; ok: boolean }).release.number, 1)
    now = await status()
    assert.deepEqual([...new Set(now.instances.map((i) => `${i.release} ${i.image}`))], ['1 web v1'])
    assert.equal(now.releases.find((r) => r.number === 1)?.status, 'active')

    const revoke = await post('/api/v1/images/web/versions/1/revoke', { reason: 'CVE in v1' })
    assert.equal(revoke.status, 200, revoke.text)
    matchesDoc('/api/v1/images/{name}/versions/{version}/revoke', 'POST', 200, revoke.json)
    const images = parseJson<Array<{ version: number; status: string; statusReason: string }>>(
      await grail(['--json', 'images'], { cwd: dir }),
    )
    assert.equal(images.find((i) => i.version === 1)?.status, 'revoked')
    assert.equal(images.find((i) => i.version === 1)?.statusReason, 'CVE in v1')
    // the revoked version is replaced by the next apply (the daemon's next pass; here, the API's)
    const again = await post('/api/v1/environments/local/apply', { reason: 'replace the revoked v1' })
    assert.equal(again.status, 200, again.text)
    now = await status()
    assert.deepEqual([...new Set(now.instances.map((i) => i.image))], ['web v2'])

    const pin = await post('/api/v1/images/web/versions/2/pin', { reason: 'keep' })
    assert.equal(pin.status, 200, pin.text)
    matchesDoc('/api/v1/images/{name}/versions/{version}/pin', 'POST', 200, pin.json)
    const unpin = await httpCall(`${server.url}/api/v1/images/web/versions/2/pin`, {
      method: 'DELETE',
      token: tokens.write,
      body: { reason: 'no longer' },
    })
    assert.deepEqual(unpin.json, {
      name: 'web',
      version: 2,
      digest: (pin.json as { digest: string }).digest,
      pinned: false,
    })

    const recycle = await post('/api/v1/environments/local/recycle', { reason: 'routine', service: 'web' })
    assert.equal(recycle.status, 200, recycle.text)
    matchesDoc('/api/v1/environments/{env}/recycle', 'POST', 200, recycle.json)

    // each write is an event naming the token and the reason, and asked for a reconcile
    const events = parseJson<Array<{ kind: string; subject: string; data: { by: string; reason: string } }>>(
      await grail(['--json', 'events', '-n', '200'], { cwd: dir }),
    ).filter((e) => e.kind.startsWith('api.'))
    assert.deepEqual(
      events.map((e) => [e.kind, e.subject, e.data.by, e.data.reason]),
      [
        ['api.apply', 'local', 'writer', 'ship v2'],
        ['api.rollback', 'web', 'writer', 'v2 is bad'],
        ['api.revoke', 'web@1', 'writer', 'CVE in v1'],
        ['api.apply', 'local', 'writer', 'replace the revoked v1'],
        ['api.pin', 'web@2', 'writer', 'keep'],
        ['api.unpin', 'web@2', 'writer', 'no longer'],
        ['api.recycle', 'web', 'writer', 'routine'],
      ],
    )
    assert.ok(ctx.reconcileRequests.includes('local'))
    // the token's value is nowhere in the event log
    const all = JSON.stringify(ctx.db.prepare('SELECT * FROM events').all())
    for (const t of Object.values(tokens)) assert.equal(all.includes(t), false)
  })

  test('the event stream delivers an event a CLI command wrote, catches up from Last-Event-ID, beats, and ends on close', async () => {
    const stream = await openSse(`${server.url}/api/v1/events/stream`, { token: tokens.read })
    assert.equal(stream.res.statusCode, 200)
    assert.match(String(stream.res.headers['content-type']), /^text\/event-stream/)
    assert.equal(
      (await grail(['token', 'create', '--name', 'from-cli', '--scope', 'read'], { cwd: dir })).code,
      0,
    )
    const e = await stream.waitFor((d) => d.kind === 'token.created' && d.subject === 'from-cli')
    assert.match(stream.text(), new RegExp(`id: ${e.id}\\nevent: grail\\ndata: `))
    // heartbeat comments keep it open (every 200 ms in this server)
    await new Promise((r) => setTimeout(r, 450))
    assert.match(stream.text(), /^: heartbeat$/m)
    stream.close()

    const id = e.id as number
    const resumed = await openSse(`${server.url}/api/v1/events/stream`, {
      token: tokens.read,
      lastEventId: id - 1,
    })
    const first = await resumed.waitFor(() => true)
    assert.equal(first.id, id, 'the first event after Last-Event-ID comes first')
    resumed.close()
  })

  test('/metrics: Prometheus text with the fleet figures', async () => {
    const res = await httpCall(`${server.url}/metrics`, { token: tokens.read })
    assert.equal(res.status, 200, res.text)
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/)
    for (const name of [
      'grail_instances',
      'grail_image_age_seconds',
      'grail_drift_findings',
      'grail_hotfixes_live',
      'grail_rollouts_total',
      'grail_reconcile_duration_seconds',
    ]) {
      assert.match(res.text, new RegExp(`^# HELP ${name} `, 'm'))
      assert.match(res.text, new RegExp(`^# TYPE ${name} (gauge|counter|summary)$`, 'm'))
    }
    const running = (await status()).instances.filter((i) => i.health === 'healthy').length
    assert.match(
      res.text,
      new RegExp(`^grail_instances\\{environment="local",health="healthy",service="web"\\} ${running}$`, 'm'),
    )
    assert.match(res.text, /^grail_image_age_seconds\{image="web",version="2"\} \d+$/m)
    assert.match(res.text, /^grail_drift_findings\{environment="local",service="web"\} 0$/m)
    assert.match(res.text, /^grail_hotfixes_live 0$/m)
    assert.match(res.text, /^grail_rollouts_total\{environment="local",outcome="ok"\} 1$/m)
    assert.match(res.text, /^grail_reconcile_duration_seconds_sum\{environment="local"\} 0\.04$/m)
    assert.match(res.text, /^grail_reconcile_duration_seconds_count\{environment="local"\} 3$/m)
  })

  test('the dashboard files: index at /, assets with their type, nothing outside, security headers, no CORS', async () => {
    const index = await httpCall(`${server.url}/`, { headers: { Origin: 'http://evil.example' } })
    assert.equal(index.status, 200)
    assert.match(String(index.headers['content-type']), /^text\/html/)
    assert.equal(index.text, '<!doctype html><title>Grail</title>')
    assert.match(String(index.headers['content-security-policy']), /default-src 'self'/)
    assert.equal(index.headers['x-content-type-options'], 'nosniff')
    assert.equal(index.headers['access-control-allow-origin'], undefined)
    const js = await httpCall(`${server.url}/assets/app.js`)
    assert.equal(js.status, 200)
    assert.match(String(js.headers['content-type']), /^text\/javascript/)
    for (const p of [
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/nothing.css',
    ])
      assert.equal((await httpCall(`${server.url}${p}`)).status, 404, p)
    const api = await httpCall(`${server.url}/api/v1/images`, {
      token: tokens.read,
      headers: { Origin: 'http://evil.example' },
    })
    assert.equal(api.headers['access-control-allow-origin'], undefined)
    assert.match(String(api.headers['content-security-policy']), /default-src 'self'/)
    const options = await httpCall(`${server.url}/api/v1/images`, { method: 'OPTIONS' })
    assert.equal(options.status, 405)
    assert.equal(options.headers['access-control-allow-origin'], undefined)

    const bare = await startHttpServer(ctx, {
      host: '127.0.0.1',
      port: 0,
      insecureRead: false,
      dashboardDir: join(dir, 'not-built'),
    })
    try {
      const page = await httpCall(`${bare.url}/`)
      assert.equal(page.status, 200)
      assert.match(page.text, /dashboard is not built/)
      assert.equal((await httpCall(`${bare.url}/app.js`)).status, 404)
    } finally {
      await bare.close()
    }
  })

  test('insecure reads: only on loopback, and writes still need a write token', async () => {
    await assert.rejects(
      startHttpServer(ctx, { host: '0.0.0.0', port: 0, insecureRead: true, dashboardDir: dir }),
      (e: unknown) =>
        e instanceof GrailError && e.code === 'API_INSECURE_READ' && /0\.0\.0\.0/.test(e.message),
    )
    const open = await startHttpServer(ctx, {
      host: '127.0.0.1',
      port: 0,
      insecureRead: true,
      dashboardDir: dir,
    })
    try {
      const res = await httpCall(`${open.url}/api/v1/environments/local/services`)
      assert.equal(res.status, 200, res.text)
      assert.equal((await httpCall(`${open.url}/metrics`)).status, 200)
      const before = snapshot()
      const w = await httpCall(`${open.url}/api/v1/environments/local/apply`, {
        method: 'POST',
        body: { reason: 'x' },
      })
      assert.equal(w.status, 401)
      const r = await httpCall(`${open.url}/api/v1/environments/local/apply`, {
        method: 'POST',
        token: tokens.read,
        body: { reason: 'x' },
      })
      assert.equal(r.status, 403)
      assert.equal(snapshot(), before)
    } finally {
      await open.close()
    }
  })

  test('TLS: with a certificate the API answers over https only', async () => {
    const cert = join(dir, 'api.crt')
    const key = join(dir, 'api.key')
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    )
    const tls = await startHttpServer(ctx, {
      host: '127.0.0.1',
      port: 0,
      insecureRead: false,
      dashboardDir: dir,
      tls: { cert, key },
    })
    try {
      assert.match(tls.url, /^https:\/\/127\.0\.0\.1:\d+$/)
      const ca = await readFile(cert, 'utf8')
      const res = await httpCall(`${tls.url}/api/v1/environments`, { token: tokens.read, ca })
      assert.equal(res.status, 200, res.text)
      assert.deepEqual(res.json, [{ name: 'local', provider: 'local', services: ['web'] }])
      await assert.rejects(
        httpCall(`${tls.url}/api/v1/environments`, { token: tokens.read }),
        /self[- ]signed|unable to verify/i,
      )
      await assert.rejects(
        httpCall(`${tls.url.replace('https:', 'http:')}/api/v1/environments`, { token: tokens.read }),
      )
    } finally {
      await tls.close()
    }
    await assert.rejects(
      startHttpServer(ctx, {
        host: '127.0.0.1',
        port: 0,
        insecureRead: false,
        dashboardDir: dir,
        tls: { cert: join(dir, 'none.crt'), key },
      }),
      (e: unknown) => e instanceof GrailError && e.code === 'API_TLS',
    )
    await rm(key)
  })

  test('closing the server ends open event streams', async () => {
    const extra = await startHttpServer(ctx, {
      host: '127.0.0.1',
      port: 0,
      insecureRead: true,
      dashboardDir: dir,
    })
    const stream = await openSse(`${extra.url}/api/v1/events/stream`)
    assert.equal(stream.res.statusCode, 200)
    await extra.close()
    await stream.ended
  })

  after(async () => {
    await server?.close()
    ctx?.close()
    if (dir) await tearDown(dir)
  })
})
