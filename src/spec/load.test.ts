import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { removeDir, tempProject } from '../../test/helpers/project.js'
import { GrailError } from '../errors.js'
import { DEFAULT_REDACT_KEYS } from '../util/redact.js'
import { loadProject } from './index.js'
import type { HealthCheck, Project, ServiceSpec } from './types.js'

const REPO = join(fileURLToPath(import.meta.url), '..', '..', '..')
const dirs: string[] = []
after(async () => {
  for (const d of dirs) await removeDir(d)
})

async function project(files: Record<string, string>): Promise<string> {
  const dir = await tempProject(files, 'grail-spec-')
  dirs.push(dir)
  return dir
}

const lines = (...ls: string[]) => `${ls.join('\n')}\n`

const FULL = lines(
  'project: shop',
  'images:',
  '  base:',
  '    base: {debian: {suite: bookworm, include: [busybox]}}',
  '    steps:',
  '      - run: busybox --install -s /usr/local/bin',
  '  api:',
  '    base: image:base',
  '    context: ./app',
  '    steps:',
  '      - copy: site/ /srv/www',
  '      - copy: {from: [a.conf, b.conf], to: /etc/app/, owner: 1000, mode: 0755, exclude: ["*.bak"]}',
  '      - run: [make, install]',
  '      - run: {command: npm ci, network: true, env: {CI: true}}',
  '      - env: {PORT: 8080, DEBUG: false}',
  '      - user: 1000',
  '      - workdir: /srv',
  '      - entrypoint: exec app',
  '      - cmd: [--port, "8080"]',
  '      - expose: [8080, "53/udp"]',
  '      - volume: /data',
  '      - label: {version: 2}',
  '      - healthcheck: {tcp: 8080, interval: 1h30m, timeout: 500}',
  '  layout:',
  '    base: {oci: vendor/layout, ref: v1}',
  '    sourceDateEpoch: 1700000000',
  '  tarball:',
  '    base: rootfs:../shared/root.tar.gz',
  'services:',
  '  api:',
  '    image: api',
  '    replicas: 3',
  '    port: 8080',
  '    publish: 8080',
  '    env: {A: 1, B: two}',
  '    files: {/etc/app.conf: "x=1\\n"}',
  '    volumes: ["cache:/cache", {name: data, path: /data, exclusive: true}]',
  '    healthcheck: {http: /healthz, expectStatus: 204}',
  '    rollout: {maxSurge: 0, maxUnavailable: 1, healthTimeout: 2m}',
  '    drift: {ignore: ["/tmp/**"]}',
  '    recycle: {maxAge: 7d, jitter: 10m, window: "02:00-05:00", order: most-drifted}',
  '  worker:',
  '    image: layout',
  'environments:',
  '  local: {}',
  '  staging:',
  '    provider: docker',
  '    endpoint: unix:///run/docker.sock',
  '    services:',
  '      api: {replicas: 2, env: {B: staging, C: 3}, rollout: {drain: 5s}, volumes: ["cache:/cache"]}',
  'policies:',
  '  gc: {keepVersions: 10}',
  '  hotfix: {maxTtl: 1h}',
)

const TIMING = { interval: 2000, timeout: 1000, healthyThreshold: 1, unhealthyThreshold: 3, startPeriod: 0 }

function expectedProject(dir: string): Project {
  const http: HealthCheck = { type: 'http', path: '/healthz', expectStatus: 204, ...TIMING }
  const api: ServiceSpec = {
    name: 'api',
    image: 'api',
    replicas: 3,
    port: 8080,
    publish: { port: 8080, host: '127.0.0.1' },
    env: { A: '1', B: 'two' },
    files: { '/etc/app.conf': 'x=1\n' },
    secret: { env: [], files: [] },
    volumes: [
      { name: 'cache', path: '/cache', exclusive: false },
      { name: 'data', path: '/data', exclusive: true },
    ],
    healthcheck: http,
    rollout: {
      strategy: 'rolling',
      maxSurge: 0,
      maxUnavailable: 1,
      order: 'stop-first',
      bake: 0,
      healthTimeout: 120_000,
      drain: 2000,
    },
    drift: { ignore: ['/tmp/**'], policy: 'fix' },
    recycle: { maxAge: 7 * 86_400_000, jitter: 600_000, window: '02:00-05:00', order: 'most-drifted' },
    crashLoop: { restarts: 3, window: 600_000, backoff: 30_000, maxBackoff: 600_000 },
    network: 'private',
    userns: 'private',
  }
  const worker: ServiceSpec = {
    name: 'worker',
    image: 'layout',
    replicas: 1,
    env: {},
    files: {},
    secret: { env: [], files: [] },
    volumes: [],
    network: 'private',
    userns: 'private',
    rollout: {
      strategy: 'rolling',
      maxSurge: 1,
      maxUnavailable: 0,
      order: 'start-first',
      bake: 0,
      healthTimeout: 60_000,
      drain: 2000,
    },
    drift: { ignore: [], policy: 'fix' },
    recycle: { jitter: 0, order: 'oldest' },
    crashLoop: { restarts: 3, window: 600_000, backoff: 30_000, maxBackoff: 600_000 },
  }
  const stagingApi: ServiceSpec = {
    ...api,
    replicas: 2,
    env: { A: '1', B: 'staging', C: '3' },
    volumes: [{ name: 'cache', path: '/cache', exclusive: false }],
    // no exclusive volume left in staging, so the default order is start-first again
    rollout: { ...api.rollout, drain: 5000, order: 'start-first' },
  }
  return {
    name: 'shop',
    file: join(dir, 'grail.yaml'),
    dir,
    images: {
      base: {
        name: 'base',
        base: {
          kind: 'debian',
          suite: 'bookworm',
          variant: 'essential',
          include: ['busybox'],
          components: ['main'],
        },
        context: dir,
        steps: [
          {
            kind: 'run',
            argv: ['/bin/sh', '-c', 'busybox --install -s /usr/local/bin'],
            network: false,
            env: {},
          },
        ],
        sourceDateEpoch: 1600000000,
      },
      api: {
        name: 'api',
        base: { kind: 'image', image: 'base' },
        context: join(dir, 'app'),
        steps: [
          { kind: 'copy', from: ['site/'], to: '/srv/www', exclude: [] },
          {
            kind: 'copy',
            from: ['a.conf', 'b.conf'],
            to: '/etc/app/',
            owner: '1000',
            mode: 0o755,
            exclude: ['*.bak'],
          },
          { kind: 'run', argv: ['make', 'install'], network: false, env: {} },
          { kind: 'run', argv: ['/bin/sh', '-c', 'npm ci'], network: true, env: { CI: 'true' } },
          { kind: 'env', env: { PORT: '8080', DEBUG: 'false' } },
          { kind: 'user', user: '1000' },
          { kind: 'workdir', path: '/srv' },
          { kind: 'entrypoint', argv: ['/bin/sh', '-c', 'exec app'] },
          { kind: 'cmd', argv: ['--port', '8080'] },
          {
            kind: 'expose',
            ports: [
              { port: 8080, protocol: 'tcp' },
              { port: 53, protocol: 'udp' },
            ],
          },
          { kind: 'volume', paths: ['/data'] },
          { kind: 'label', labels: { version: '2' } },
          {
            kind: 'healthcheck',
            check: { type: 'tcp', port: 8080, ...TIMING, interval: 5_400_000, timeout: 500 },
          },
        ],
        sourceDateEpoch: 1600000000,
      },
      layout: {
        name: 'layout',
        base: { kind: 'oci', path: join(dir, 'vendor', 'layout'), ref: 'v1' },
        context: dir,
        steps: [],
        sourceDateEpoch: 1700000000,
      },
      tarball: {
        name: 'tarball',
        base: { kind: 'rootfs', path: join(dir, '..', 'shared', 'root.tar.gz') },
        context: dir,
        steps: [],
        sourceDateEpoch: 1600000000,
      },
    },
    services: { api, worker },
    environments: {
      local: { name: 'local', provider: 'local', services: { api, worker } },
      staging: {
        name: 'staging',
        provider: 'docker',
        endpoint: 'unix:///run/docker.sock',
        services: { api: stagingApi, worker },
      },
    },
    policies: {
      gc: { keepVersions: 10, keepDeployedWithin: 14 * 86_400_000, keepReleases: 3 },
      disruptionBudget: { maxUnavailable: 1, minHealthy: 0 },
      hotfix: { maxTtl: 3_600_000, requireReason: true },
      redact: { keys: [...DEFAULT_REDACT_KEYS] },
      patch: { interval: 6 * 3_600_000, action: 'report', security: false },
    },
  }
}

describe('loadProject', () => {
  it('normalises a full spec: shorthands, durations, defaults, host paths, environment overrides', async () => {
    const dir = await project({ 'grail.yaml': FULL })
    const loaded = await loadProject(dir, { env: { SOURCE_DATE_EPOCH: '1600000000' } })
    assert.deepEqual(loaded, expectedProject(dir))
  })

  it('fills every default for a minimal spec', async () => {
    const dir = await project({ 'grail.yml': 'project: tiny\n' })
    const loaded = await loadProject(join(dir, 'grail.yml'), { env: {} })
    assert.deepEqual(loaded, {
      name: 'tiny',
      file: join(dir, 'grail.yml'),
      dir,
      images: {},
      services: {},
      environments: { local: { name: 'local', provider: 'local', services: {} } },
      policies: {
        gc: { keepVersions: 5, keepDeployedWithin: 1_209_600_000, keepReleases: 3 },
        disruptionBudget: { maxUnavailable: 1, minHealthy: 0 },
        hotfix: { maxTtl: 86_400_000, requireReason: true },
        redact: { keys: [...DEFAULT_REDACT_KEYS] },
        patch: { interval: 21_600_000, action: 'report', security: false },
      },
    })
  })

  it('refuses an image env step whose key is named like a secret, pointing at the key', async () => {
    const dir = await project({
      'grail.yaml': lines(
        'project: p',
        'images:',
        '  app:',
        '    steps:',
        '      - env: { LOG_LEVEL: info, Api_Token: abc }',
        '      - cmd: [/app]',
      ),
    })
    await assert.rejects(loadProject(dir, { env: {} }), (err: unknown) => {
      assert.ok(err instanceof GrailError)
      const text = [err.message, ...err.details, err.hint].join('\n')
      assert.match(text, /grail\.yaml:5:\d+/)
      assert.match(text, /Api_Token is named like a secret/)
      assert.match(text, /secret: true/)
      return true
    })
  })

  it('takes env values and deploy files marked secret, and a redaction key pattern', async () => {
    const dir = await project({
      'grail.yaml': [
        'project: s',
        'images: { app: { steps: [{ cmd: [/app] }] } }',
        'services:',
        '  app:',
        '    image: app',
        '    env: { A: plain, B: { value: hunter22, secret: true }, C: { value: 3 } }',
        '    files: { /etc/a: x, /etc/key.pem: { content: k, secret: true } }',
        'environments:',
        '  prod: { services: { app: { env: { B: prodpass, D: { value: new, secret: true } } } } }',
        'policies: { redact: { keys: ["*_DSN"] } }',
        '',
      ].join('\n'),
    })
    const loaded = await loadProject(dir, { env: {} })
    const app = loaded.services.app
    assert.deepEqual(app?.env, { A: 'plain', B: 'hunter22', C: '3' })
    assert.deepEqual(app?.files, { '/etc/a': 'x', '/etc/key.pem': 'k' })
    assert.deepEqual(app?.secret, { env: ['B'], files: ['/etc/key.pem'] })
    assert.deepEqual(loaded.policies.redact, { keys: ['*_DSN'] })
    // an override with a plain value keeps the key secret
    const prod = loaded.environments.prod?.services.app
    assert.deepEqual(prod?.env, { A: 'plain', B: 'prodpass', C: '3', D: 'new' })
    assert.deepEqual(prod?.secret, { env: ['B', 'D'], files: ['/etc/key.pem'] })
  })

  it('defaults an image to scratch and the canary to one instance', async () => {
    const dir = await project({
      'grail.yaml': lines(
        'project: p',
        'images: {a: {}}',
        'services: {s: {image: a, rollout: {strategy: canary}}}',
      ),
    })
    const p = await loadProject(dir, { env: {} })
    assert.deepEqual(p.images.a, { name: 'a', base: { kind: 'scratch' }, context: dir, steps: [] })
    assert.deepEqual(p.services.s?.rollout.canary, { instances: 1 })
  })

  it('takes SOURCE_DATE_EPOCH only when it is a whole number', async () => {
    const dir = await project({ 'grail.yaml': 'project: p\nimages: {a: {}}\n' })
    assert.equal((await loadProject(dir, { env: { SOURCE_DATE_EPOCH: '42' } })).images.a?.sourceDateEpoch, 42)
    assert.equal(
      (await loadProject(dir, { env: { SOURCE_DATE_EPOCH: '' } })).images.a?.sourceDateEpoch,
      undefined,
    )
    await assert.rejects(loadProject(dir, { env: { SOURCE_DATE_EPOCH: 'yesterday' } }), (err: unknown) => {
      assert.ok(err instanceof GrailError)
      assert.equal(err.code, 'SOURCE_DATE_EPOCH_INVALID')
      assert.match(err.message, /SOURCE_DATE_EPOCH="yesterday"/)
      return true
    })
  })

  it('reads an unquoted YAML mode as octal, as chmod does', async () => {
    const dir = await project({
      'grail.yaml': lines(
        'project: p',
        'images:',
        '  a:',
        '    steps:',
        '      - copy: {from: x, to: /x, mode: 0644}',
        '      - copy: {from: x, to: /x, mode: 755}',
        '      - copy: {from: x, to: /x, mode: "0600"}',
        '      - copy: {from: x, to: /x, mode: 0o700}',
      ),
    })
    const steps = (await loadProject(dir, { env: {} })).images.a?.steps ?? []
    assert.deepEqual(
      steps.map((s) => (s.kind === 'copy' ? s.mode : undefined)),
      [0o644, 0o755, 0o600, 0o700],
    )
  })

  it('fails with NO_SPEC and a `grail init` hint when the directory has no spec', async () => {
    const dir = await project({ 'README.md': 'hi' })
    await assert.rejects(loadProject(dir), (err: unknown) => {
      assert.ok(err instanceof GrailError)
      assert.equal(err.code, 'NO_SPEC')
      assert.match(err.hint ?? '', /grail init/)
      return true
    })
  })

  it('refuses a directory with two spec files', async () => {
    const dir = await project({ 'grail.yaml': 'project: a\n', 'grail.yml': 'project: b\n' })
    await assert.rejects(loadProject(dir), { code: 'SPEC_AMBIGUOUS' })
  })

  it('loads the examples in the repository', async () => {
    const ref = await loadProject(join(REPO, 'examples', 'spec-reference'), { env: {} })
    assert.deepEqual(Object.keys(ref.images), ['base', 'api', 'db', 'tools'])
    assert.equal(ref.services.db?.rollout.order, 'stop-first')
    assert.equal(ref.environments.production?.services.api?.replicas, 6)
    assert.deepEqual(ref.environments.production?.services.api?.secret, {
      env: ['DB_PASSWORD'],
      files: ['/etc/api/signing.key'],
    })
    const hello = await loadProject(join(REPO, 'examples', 'hello'), { env: {} })
    assert.equal(hello.services.web?.publish?.port, 8080)
  })
})
