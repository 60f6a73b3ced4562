import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { openDb } from './db.js'
import { liveInstances, recordInstance, setInstancePhase } from './instances.js'
import { insertRelease, listReleases, setReleaseStatus } from './releases.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

test('releases are numbered per service and keep their status and reason', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-rel-'))
  dirs.push(dir)
  const db = openDb(join(dir, 'state.db'))
  const base = {
    environment: 'local',
    imageName: 'hello',
    imageVersion: 1,
    imageDigest: `sha256:${'1'.repeat(64)}` as const,
    configDigest: `sha256:${'a'.repeat(64)}` as const,
    config: { env: {} },
  }
  assert.equal(insertRelease(db, { ...base, service: 'web' }).number, 1)
  assert.equal(insertRelease(db, { ...base, service: 'web', environment: 'prod' }).number, 2)
  assert.equal(insertRelease(db, { ...base, service: 'api' }).number, 1)
  setReleaseStatus(db, 'web', 1, 'rolled-back', 'health check failed')
  const [r] = listReleases(db, 'local', 'web')
  assert.equal(r?.status, 'rolled-back')
  assert.equal(r?.reason, 'health check failed')
  assert.deepEqual(r?.config, { env: {} })

  recordInstance(db, {
    id: 'web-r1-a',
    service: 'web',
    environment: 'local',
    releaseNumber: 1,
    provider: 'local',
  })
  setInstancePhase(db, 'web-r1-a', 'healthy', { hostPort: 40001 })
  assert.deepEqual(
    liveInstances(db, 'local').map((i) => [i.id, i.phase, i.hostPort]),
    [['web-r1-a', 'healthy', 40001]],
  )
  setInstancePhase(db, 'web-r1-a', 'destroyed')
  assert.deepEqual(liveInstances(db, 'local'), [])
  db.close()
})
