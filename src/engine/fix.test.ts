import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { GrailError } from '../errors.js'
import { homeAt } from '../home.js'
import type { OciStore } from '../oci/store.js'
import type { Action } from '../plan/index.js'
import { stubProvider as onlyMethods } from './testing.js'
import type { EngineEnv } from './types.js'
import type { InstanceObservation, RuntimeProvider } from '../runtime/types.js'
import { loadProject } from '../spec/index.js'
import { openDb } from '../state/index.js'
import { fixDrift, fixesDrift } from './fix.js'

const d = `sha256:${'1'.repeat(64)}` as const
const plan: Action[] = [
  { kind: 'replace', service: 'web', instance: 'web-a', release: 1, cause: 'drift', reason: 'drifted' },
  { kind: 'replace', service: 'web', instance: 'web-b', release: 1, cause: 'crashed', reason: 'crashed' },
  { kind: 'destroy', service: 'web', instance: 'web-x', cause: 'orphan', reason: 'orphan' },
  { kind: 'destroy', service: 'web', instance: 'web-old', cause: 'superseded', reason: 'superseded' },
  {
    kind: 'deploy',
    service: 'api',
    from: 1,
    image: { name: 'api', version: 2, digest: d },
    configDigest: d,
    cause: 'image',
    reason: 'new release',
  },
  { kind: 'scale-up', service: 'web', release: 1, count: 1, reason: 'missing replica' },
  { kind: 'scale-down', service: 'web', instances: ['web-c'], reason: 'replicas 2 < 3' },
]
const ids = (xs: Action[]) => xs.map((x) => ('instance' in x ? x.instance : `${x.kind} ${x.service}`))

test('drift --fix replaces every instance and destroys orphans, and applies nothing else', () => {
  assert.deepEqual(ids(plan.filter((x) => fixesDrift(x))), ['web-a', 'web-b', 'web-x'])
})

test('drift --fix --instance replaces only that instance, and no orphan', () => {
  assert.deepEqual(ids(plan.filter((x) => fixesDrift(x, 'web-b'))), ['web-b'])
  // an orphan named by --instance is not destroyed: --instance only narrows replacements
  assert.deepEqual(ids(plan.filter((x) => fixesDrift(x, 'web-x'))), [])
  assert.deepEqual(ids(plan.filter((x) => fixesDrift(x, 'nosuch'))), [])
})

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

/** A provider that lists one orphan and records stops and destroys; anything else it is asked throws. */
function stubProvider(environment: string, calls: string[]): RuntimeProvider {
  const orphan: InstanceObservation = {
    id: 'web-zz',
    labels: { project: 'a', environment, service: 'web', release: 7 },
    state: 'running',
    imageDigest: d,
    env: {},
    mounts: [],
  }
  const known = {
    name: 'stub',
    list: async () => (calls.includes('destroy web-zz') ? [] : [orphan]),
    logs: async () => '',
    reconcile: async () => [],
    stop: async (h: { id: string }) => {
      calls.push(`stop ${h.id}`)
    },
    destroy: async (h: { id: string }) => {
      calls.push(`destroy ${h.id}`)
    },
  }
  return onlyMethods(known)
}

async function setup(calls: string[]): Promise<EngineEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'grail-engine-fix-'))
  dirs.push(dir)
  await writeFile(join(dir, 'grail.yaml'), 'project: a\nimages: {}\nservices: {}\n')
  const project = await loadProject(dir, { cwd: dir, env: {} })
  const environment = Object.keys(project.environments)[0] as string
  return {
    project,
    environment,
    home: homeAt(join(dir, '.grail')),
    db: openDb(join(dir, 'state.db')),
    store: {} as OciStore,
    provider: stubProvider(environment, calls),
    routerFor: async () => null,
    imageHealthcheck: async () => undefined,
  }
}

test('drift --fix destroys an orphan the provider has (with a stub provider)', async () => {
  const calls: string[] = []
  const a = await setup(calls)
  const { report, fixed } = await fixDrift(a)
  assert.deepEqual(report.drifted, ['web-zz'])
  assert.deepEqual(
    fixed.plan.actions.map((x) => [x.kind, 'instance' in x ? x.instance : '']),
    [['destroy', 'web-zz']],
  )
  assert.deepEqual(calls, ['stop web-zz', 'destroy web-zz'])
  a.db.close()
})

test('drift --fix --instance leaves an orphan alone, and one that is not there touches nothing (with a stub provider)', async () => {
  const calls: string[] = []
  const a = await setup(calls)
  const { report, fixed } = await fixDrift(a, { instance: 'web-zz' })
  assert.deepEqual(
    report.instances.map((i) => i.instance),
    ['web-zz'],
  )
  assert.deepEqual(fixed.plan.actions, [])
  await assert.rejects(
    fixDrift(a, { instance: 'web-nosuch' }),
    (err: unknown) => err instanceof GrailError && err.code === 'INSTANCE_NOT_FOUND',
  )
  assert.deepEqual(calls, [])
  a.db.close()
})

test('recycle acts only on recycle replacements: an orphan the plan would destroy is left to apply (with a stub provider)', async () => {
  const { planReport, recycleEnvironment } = await import('./deploy.js')
  const calls: string[] = []
  const a = await setup(calls)
  const now = Date.parse('2026-06-01T00:00:00Z')
  const { plan } = await planReport(a, now)
  assert.deepEqual(
    plan.actions.map((x) => [x.kind, 'instance' in x ? x.instance : '']),
    [['destroy', 'web-zz']],
  )
  assert.deepEqual(await recycleEnvironment(a, { dryRun: true, now }), {
    environment: a.environment,
    actions: [],
    done: false,
  })
  const done = await recycleEnvironment(a, { dryRun: false, now })
  assert.deepEqual(done.actions, [])
  assert.equal(done.done, true)
  assert.deepEqual(calls, [])
  a.db.close()
})
