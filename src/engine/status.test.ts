import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { GrailError } from '../errors.js'
import { homeAt } from '../home.js'
import type { OciStore } from '../oci/store.js'
import { stubProvider as onlyMethods } from './testing.js'
import type { EngineEnv } from './types.js'
import type { InstanceObservation, RuntimeProvider } from '../runtime/types.js'
import { loadProject } from '../spec/index.js'
import {
  insertRelease,
  openDb,
  recordInstance,
  recordProbe,
  recordRestart,
  setInstancePhase,
  setReleaseStatus,
} from '../state/index.js'
import { servingNow, statusReport } from './status.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

/** A provider that answers from a table; any method the test did not expect to be called throws. */
function stubProvider(
  instances: Record<string, Partial<InstanceObservation> | 'missing'>,
  logs: string,
): RuntimeProvider {
  const known = {
    name: 'stub',
    inspect: async (h: { id: string }) => {
      const o = instances[h.id]
      if (o === undefined || o === 'missing')
        throw new GrailError('INSTANCE_NOT_FOUND', `no instance ${h.id}`, { hint: '' })
      return o as InstanceObservation
    },
    endpoint: async () => ({ host: '127.0.0.1', port: 1 }),
    logs: async () => logs,
  }
  return onlyMethods(known)
}

test('status assembles instances, health, probes and crash loops (with a stub provider)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-engine-status-'))
  dirs.push(dir)
  await writeFile(
    join(dir, 'grail.yaml'),
    'project: a\nimages: {web: {}}\nservices:\n  web: {image: web, healthcheck: {tcp: 8080, interval: 1h}}\n',
  )
  const project = await loadProject(dir, { cwd: dir, env: {} })
  const environment = Object.keys(project.environments)[0] as string
  const db = openDb(join(dir, 'state.db'))
  const digest = `sha256:${'1'.repeat(64)}` as const
  const rel = insertRelease(db, {
    service: 'web',
    environment,
    imageName: 'web',
    imageVersion: 4,
    imageDigest: digest,
    configDigest: digest,
    config: { env: {} },
  })
  setReleaseStatus(db, 'web', rel.number, 'active')
  for (const [id, release, port] of [
    ['web-a', rel.number, 40001],
    ['web-b', rel.number, 40002],
    ['web-c', 9, 40003],
  ] as const) {
    recordInstance(db, { id, service: 'web', environment, releaseNumber: release, provider: 'stub' })
    setInstancePhase(db, id, 'healthy', { hostPort: port })
  }
  const now = Date.parse('2030-01-01T00:00:10.000Z')
  // a probe a second old is reused (interval 1h): nothing is probed
  recordProbe(db, {
    instance: 'web-a',
    at: '2030-01-01T00:00:09.000Z',
    ok: true,
    detail: 'connected',
    failures: 0,
  })
  for (const s of [3, 2, 1])
    recordRestart(db, {
      environment,
      service: 'web',
      release: rel.number,
      instance: 'web-b',
      cause: 'crashed',
      at: new Date(now - s * 1000).toISOString(),
    })
  const a: EngineEnv = {
    project,
    environment,
    home: homeAt(join(dir, '.grail')),
    db,
    store: {} as OciStore,
    provider: stubProvider(
      { 'web-a': { state: 'running', pid: 4242 }, 'web-b': { state: 'stopped' } },
      'boom\n\nbye\n',
    ),
    routerFor: async () => null,
    imageHealthcheck: async () => undefined,
  }
  const r = await statusReport(a, now)
  assert.equal(r.environment, environment)
  assert.deepEqual(
    [...r.instances].sort((x, y) => (x.id < y.id ? -1 : 1)).map(({ createdAt, ...i }) => i),
    [
      {
        id: 'web-a',
        service: 'web',
        release: 1,
        image: 'web v4',
        digest,
        health: 'healthy',
        probe: { at: '2030-01-01T00:00:09.000Z', ok: true, detail: 'connected', failures: 0 },
        pid: 4242,
        port: 40001,
      },
      {
        id: 'web-b',
        service: 'web',
        release: 1,
        image: 'web v4',
        digest,
        health: 'stopped',
        probe: null,
        pid: null,
        port: 40002,
      },
      {
        id: 'web-c',
        service: 'web',
        release: 9,
        image: '?',
        digest: undefined,
        health: 'missing',
        probe: null,
        pid: null,
        port: 40003,
      },
    ],
  )
  assert.equal(r.crashLoops.length, 1)
  const [loop] = r.crashLoops
  assert.deepEqual(
    { ...loop, summary: undefined },
    {
      service: 'web',
      release: 1,
      restarts: 3,
      summary: undefined,
      // backoff 30 s after the last restart
      nextAttemptAt: '2030-01-01T00:00:39.000Z',
      instance: 'web-b',
      log: ['boom', 'bye'],
    },
  )
  assert.match(loop?.summary ?? '', /^crash loop: 3 restarts/)
  assert.deepEqual(
    r.releases.map((x) => [x.service, x.number, x.status]),
    [['web', 1, 'active']],
  )
  assert.deepEqual(r.proxies, [])
  db.close()
})

test('what serves: the active release of each service and its published URL', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-engine-serving-'))
  dirs.push(dir)
  await writeFile(
    join(dir, 'grail.yaml'),
    'project: a\nimages: {web: {}}\nservices:\n  web: {image: web, port: 8080, publish: 18080}\n  api: {image: web}\n',
  )
  const project = await loadProject(dir, { cwd: dir, env: {} })
  const environment = Object.keys(project.environments)[0] as string
  const db = openDb(join(dir, 'state.db'))
  const digest = `sha256:${'1'.repeat(64)}` as const
  const release = (service: string) =>
    insertRelease(db, {
      service,
      environment,
      imageName: 'web',
      imageVersion: 1,
      imageDigest: digest,
      configDigest: digest,
      config: { env: {} },
    })
  release('web')
  setReleaseStatus(db, 'web', 1, 'superseded')
  release('web')
  setReleaseStatus(db, 'web', 2, 'active')
  release('api') // pending: nothing serves api yet
  assert.deepEqual(servingNow(db, project, environment), [
    { service: 'web', release: 2, url: 'http://127.0.0.1:18080/' },
    { service: 'api', release: undefined, url: undefined },
  ])
  db.close()
})
