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
import { insertRelease, openDb, recordInstance, setInstancePhase, setReleaseStatus } from '../state/index.js'
import { driftReport } from './drift-report.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

/** A provider that lists what it is given; any method the test did not expect to be called throws. */
function stubProvider(listed: InstanceObservation[]): RuntimeProvider {
  const known = { name: 'stub', list: async () => listed, logs: async () => '' }
  return onlyMethods(known)
}

const digest = `sha256:${'1'.repeat(64)}` as const

/**
 * A spec whose image was never built (so it cannot be planned), state with instance web-a of release 1
 * that the provider no longer has, and an instance web-zz the provider has and state does not know.
 */
async function setup(): Promise<EngineEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'grail-engine-drift-'))
  dirs.push(dir)
  await writeFile(join(dir, 'grail.yaml'), 'project: a\nimages: {web: {}}\nservices:\n  web: {image: web}\n')
  const project = await loadProject(dir, { cwd: dir, env: {} })
  const environment = Object.keys(project.environments)[0] as string
  const db = openDb(join(dir, 'state.db'))
  const rel = insertRelease(db, {
    service: 'web',
    environment,
    imageName: 'web',
    imageVersion: 1,
    imageDigest: digest,
    configDigest: digest,
    config: { env: {} },
  })
  setReleaseStatus(db, 'web', rel.number, 'active')
  recordInstance(db, { id: 'web-a', service: 'web', environment, releaseNumber: 1, provider: 'stub' })
  setInstancePhase(db, 'web-a', 'healthy', { hostPort: 40001 })
  const orphan: InstanceObservation = {
    id: 'web-zz',
    labels: { project: 'a', environment, service: 'web', release: 7 },
    state: 'running',
    imageDigest: digest,
    env: {},
    mounts: [],
  }
  return {
    project,
    environment,
    home: homeAt(join(dir, '.grail')),
    db,
    store: {} as OciStore,
    provider: stubProvider([orphan]),
    routerFor: async () => null,
    imageHealthcheck: async () => undefined,
  }
}

test('a spec that cannot be planned still gets its drift reported, the reason as not applied (with a stub provider)', async () => {
  const a = await setup()
  const { report, plan, proxies } = await driftReport(a, { now: Date.parse('2030-01-01T00:00:00Z') })
  assert.equal(report.at, '2030-01-01T00:00:00.000Z')
  assert.equal(report.environment, a.environment)
  assert.deepEqual(
    report.instances.map((d) => [d.instance, d.release, d.runtime.map((r) => r.kind), d.unexplained]),
    [
      ['web-a', 1, ['missing'], 1],
      ['web-zz', 7, ['orphan'], 1],
    ],
  )
  assert.deepEqual(report.drifted, ['web-a', 'web-zz'])
  assert.deepEqual(report.desired, [
    { service: '*', reason: 'service web needs image web, which has not been built' },
  ])
  assert.deepEqual(plan.actions, [])
  assert.deepEqual(proxies, [])
  a.db.close()
})

test('--instance narrows the report to one instance; one that is not there is an error (with a stub provider)', async () => {
  const a = await setup()
  const { report } = await driftReport(a, { instance: 'web-zz' })
  assert.deepEqual(
    report.instances.map((d) => d.instance),
    ['web-zz'],
  )
  // what drifted is the environment's, not only the instance shown
  assert.deepEqual(report.drifted, ['web-a', 'web-zz'])
  await assert.rejects(
    driftReport(a, { instance: 'web-nosuch' }),
    (err: unknown) =>
      err instanceof GrailError &&
      err.code === 'INSTANCE_NOT_FOUND' &&
      err.message === `no instance web-nosuch in ${a.environment}`,
  )
  a.db.close()
})

test('with requirePlan (drift --fix) a spec that cannot be planned is the error (with a stub provider)', async () => {
  const a = await setup()
  await assert.rejects(
    driftReport(a, { requirePlan: true }),
    (err: unknown) => err instanceof GrailError && err.code === 'IMAGE_NOT_BUILT',
  )
  a.db.close()
})
