import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Validator } from '@seriousme/openapi-schema-validator'
import { GrailError } from '../../errors.js'
import type { ServerContext } from '../context.js'
import { isLoopback } from './auth.js'
import { checkBody } from './body.js'
import { EventStreams } from './event-stream.js'
import { apiRoutes } from './index.js'
import { escapeLabel, renderMetrics } from './metrics.js'
import { openApiDocument } from './openapi.js'
import { matchPath, matchRoute } from './router.js'
import { resolveStatic } from './static.js'

const code = (c: string) => (e: unknown) => e instanceof GrailError && e.code === c

// the route table only keeps the context in closures: building it needs none
const routes = apiRoutes({} as ServerContext, {
  streams: new EventStreams(),
  heartbeatMs: 1000,
  driftCache: new Map(),
})

test('paths match segment by segment; a parameter is one decoded segment, never two', () => {
  assert.deepEqual(matchPath('/api/v1/environments/{env}/status', '/api/v1/environments/prod/status'), {
    env: 'prod',
  })
  assert.equal(matchPath('/api/v1/environments/{env}/status', '/api/v1/environments//status'), null)
  assert.equal(matchPath('/api/v1/environments/{env}/status', '/api/v1/environments/a%2Fb/status'), null)
  assert.equal(matchPath('/api/v1/environments/{env}/status', '/api/v1/environments/%E0%A4%A/status'), null)
  assert.equal(matchPath('/api/v1/images', '/api/v1/images/'), null)
  const m = matchRoute(routes, 'GET', '/api/v1/images/web/versions/2/pin')
  assert.equal(m.kind, 'method')
  assert.deepEqual(m.kind === 'method' ? m.allow.sort() : [], ['DELETE', 'POST'])
  assert.equal(matchRoute(routes, 'GET', '/api/v1/nothing').kind, 'none')
  const r = matchRoute(routes, 'POST', '/api/v1/environments/staging/services/web/rollback')
  assert.equal(r.kind === 'route' ? r.route.access : '', 'write')
})

test('every route is read, write or (the document alone) open; every POST and DELETE is a write', () => {
  for (const r of routes) {
    if (r.method !== 'GET') assert.equal(r.access, 'write', `${r.method} ${r.path}`)
    if (r.access === 'none') assert.equal(r.path, '/api/openapi.json')
    if (r.access === 'write') assert.ok(r.body, `${r.path} checks its body`)
  }
})

test('loopback is 127.0.0.0/8, ::1 and localhost; nothing else', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])
    assert.ok(isLoopback(h), h)
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '128.0.0.1', ''])
    assert.ok(!isLoopback(h), h)
})

test('a write body needs a reason and only the keys the write takes, with their types', () => {
  const shape = {
    release: { type: 'integer' as const, description: 'n' },
    from: { type: 'string' as const, description: 'env', required: true },
  }
  checkBody({ reason: 'why', from: 'staging', release: 2 }, shape)
  assert.throws(
    () => checkBody({ from: 'staging' }, shape),
    (e: unknown) => code('API_BAD_REQUEST')(e) && /"reason"/.test((e as Error).message),
  )
  assert.throws(
    () => checkBody({ reason: '  ', from: 'staging' }, shape),
    /"reason" must be a non-empty string/,
  )
  assert.throws(() => checkBody({ reason: 'x' }, shape), /the body has no "from"/)
  assert.throws(() => checkBody({ reason: 'x', from: 'a', force: true }, shape), /unknown key "force"/)
  assert.throws(
    () => checkBody({ reason: 'x', from: 'a', release: 1.5 }, shape),
    /"release" must be a whole number/,
  )
  assert.throws(() => checkBody({ reason: 'x', from: 3 }, shape), /"from" must be a non-empty string/)
})

test('metrics: HELP and TYPE per family, labels sorted and escaped, summary suffixes', () => {
  assert.equal(escapeLabel('a"b\\c\nd'), 'a\\"b\\\\c\\nd')
  const text = renderMetrics([
    {
      name: 'grail_instances',
      help: 'Instances.\nBy health.',
      type: 'gauge',
      samples: [{ labels: { service: 'we"b', environment: 'prod', health: 'healthy' }, value: 2 }],
    },
    {
      name: 'grail_reconcile_duration_seconds',
      help: 'Passes.',
      type: 'summary',
      samples: [
        { labels: { environment: 'prod' }, value: 1.5, suffix: '_sum' },
        { labels: { environment: 'prod' }, value: 3, suffix: '_count' },
      ],
    },
    { name: 'grail_hotfixes_live', help: 'Live.', type: 'gauge', samples: [{ labels: {}, value: 0 }] },
  ])
  assert.equal(
    text,
    [
      '# HELP grail_instances Instances.\\nBy health.',
      '# TYPE grail_instances gauge',
      'grail_instances{environment="prod",health="healthy",service="we\\"b"} 2',
      '# HELP grail_reconcile_duration_seconds Passes.',
      '# TYPE grail_reconcile_duration_seconds summary',
      'grail_reconcile_duration_seconds_sum{environment="prod"} 1.5',
      'grail_reconcile_duration_seconds_count{environment="prod"} 3',
      '# HELP grail_hotfixes_live Live.',
      '# TYPE grail_hotfixes_live gauge',
      'grail_hotfixes_live 0',
      '',
    ].join('\n'),
  )
})

test('static files: index.html at /, assets inside the root only (no .., no hidden, no symlink out)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-static-'))
  try {
    const root = join(dir, 'dashboard')
    await mkdir(join(root, 'assets'), { recursive: true })
    await writeFile(join(root, 'index.html'), '<!doctype html>')
    await writeFile(join(root, 'assets', 'app.js'), '')
    await writeFile(join(root, '.env'), 'SECRET=1')
    await writeFile(join(dir, 'outside.txt'), 'secret')
    await symlink(join(dir, 'outside.txt'), join(root, 'assets', 'leak.txt'))
    await symlink(join(root, 'assets', 'app.js'), join(root, 'assets', 'alias.js'))
    assert.equal(await resolveStatic(root, '/'), join(root, 'index.html'))
    assert.equal(await resolveStatic(root, '/assets/app.js'), join(root, 'assets', 'app.js'))
    assert.equal(await resolveStatic(root, '/assets/alias.js'), join(root, 'assets', 'app.js'))
    // a dashboard route (no extension) is the page itself
    assert.equal(await resolveStatic(root, '/images/web'), join(root, 'index.html'))
    for (const p of [
      '/../outside.txt',
      '/assets/../../outside.txt',
      '/%2e%2e/outside.txt',
      '/assets/%2e%2e/%2e%2e/outside.txt',
      '/assets/leak.txt',
      '/.env',
      '/assets//app.js',
      '/assets\\..\\..\\outside.txt',
      '/assets/app.js%00.html',
      '/nothing.js',
      '/%zz',
    ])
      assert.equal(await resolveStatic(root, p), undefined, p)
    assert.equal(await resolveStatic(join(dir, 'missing'), '/'), undefined)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('the OpenAPI document is a valid OpenAPI 3.1 document describing every route', async () => {
  const doc = openApiDocument(routes)
  const res = await new Validator().validate(doc)
  assert.equal(res.valid, true, JSON.stringify(res.errors, null, 2))
  const paths = doc.paths as Record<string, Record<string, { security: unknown[]; 'x-grail-access': string }>>
  for (const r of routes) {
    const op = paths[r.path]?.[r.method.toLowerCase()]
    assert.ok(op, `${r.method} ${r.path} is described`)
    assert.equal(op['x-grail-access'], r.access)
    assert.deepEqual(op.security, r.access === 'none' ? [] : [{ bearer: [r.access] }])
  }
})

test('/api/v1/outdated is there when the daemon hands over the patch report, and is then described', async () => {
  assert.equal(matchRoute(routes, 'GET', '/api/v1/outdated').kind, 'none')
  const withPatch = apiRoutes({} as ServerContext, {
    streams: new EventStreams(),
    heartbeatMs: 1000,
    driftCache: new Map(),
    outdated: async () => [{ image: 'web', package: 'openssl' }],
  })
  const m = matchRoute(withPatch, 'GET', '/api/v1/outdated')
  assert.equal(m.kind, 'route')
  if (m.kind === 'route') {
    assert.equal(m.route.access, 'read')
    const out = await m.route.handle({} as Parameters<typeof m.route.handle>[0])
    assert.deepEqual(out, { json: [{ image: 'web', package: 'openssl' }] })
  }
  const doc = openApiDocument(withPatch)
  assert.ok((doc.paths as Record<string, unknown>)['/api/v1/outdated'])
  assert.equal((await new Validator().validate(doc)).valid, true)
})
