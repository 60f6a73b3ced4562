import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { GrailError } from '../errors.js'
import type { DesiredService } from '../plan/index.js'
import { loadProject } from '../spec/index.js'
import type { Project } from '../spec/types.js'
import type { Db, ReleaseRecord } from '../state/index.js'
import { insertImage, insertRelease, openDb, setImageStatus, setReleaseStatus } from '../state/index.js'
import { nextApplyAfter, rollbackTargetOf } from './rollback.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

const digest = (c: string) => `sha256:${c.repeat(64)}` as const

async function setup(): Promise<{ project: Project; environment: string; db: Db }> {
  const dir = await mkdtemp(join(tmpdir(), 'grail-engine-rollback-'))
  dirs.push(dir)
  await writeFile(join(dir, 'grail.yaml'), 'project: a\nimages: {web: {}}\nservices:\n  web: {image: web}\n')
  const project = await loadProject(dir, { cwd: dir, env: {} })
  return {
    project,
    environment: Object.keys(project.environments)[0] as string,
    db: openDb(join(dir, 'state.db')),
  }
}

/** Releases #1 (v1), #2 (v2), #3 (v3) of web; #3 active, the others superseded. */
function history(db: Db, environment: string): ReleaseRecord[] {
  const out: ReleaseRecord[] = []
  for (const n of [1, 2, 3]) {
    const img = insertImage(db, {
      name: 'web',
      digest: digest(String(n)),
      configDigest: digest('c'),
      buildKey: `k${n}`,
      parentDigest: null,
      base: { kind: 'scratch' },
      gitCommit: null,
      createdAt: new Date().toISOString(),
      size: 1,
      packages: [],
    })
    const r = insertRelease(db, {
      service: 'web',
      environment,
      imageName: 'web',
      imageVersion: img.version,
      imageDigest: img.digest,
      configDigest: digest('e'),
      config: { env: {} },
    })
    setReleaseStatus(db, 'web', r.number, n === 3 ? 'active' : 'superseded')
    out.push(r)
  }
  return out
}

const code = (c: string) => (err: unknown) => err instanceof GrailError && err.code === c

test('rollback targets the release before the active one, or the one asked for', async () => {
  const a = await setup()
  history(a.db, a.environment)
  assert.equal(rollbackTargetOf(a, 'web').target.number, 2)
  assert.equal(rollbackTargetOf(a, 'web', 1).target.imageVersion, 1)
  assert.equal(rollbackTargetOf(a, 'web').svc.image, 'web')
  a.db.close()
})

test('rollback skips a revoked earlier release, and refuses one asked for by number', async () => {
  const a = await setup()
  history(a.db, a.environment)
  setImageStatus(a.db, 'web', 2, 'revoked', 'CVE-1')
  assert.equal(rollbackTargetOf(a, 'web').target.number, 1)
  assert.throws(
    () => rollbackTargetOf(a, 'web', 2),
    (err: unknown) =>
      code('RELEASE_REVOKED')(err) &&
      (err as GrailError).message ===
        `${a.environment}: web: release #2 runs image web@2, which is revoked (CVE-1)` &&
      /releases: #3 active, #2 superseded, #1 superseded/.test((err as GrailError).hint ?? ''),
  )
  setImageStatus(a.db, 'web', 1, 'revoked', 'CVE-2')
  assert.throws(() => rollbackTargetOf(a, 'web'), code('NO_SUCH_RELEASE'))
  a.db.close()
})

test('rollback of a service the environment does not have, or of a release that is not there', async () => {
  const a = await setup()
  assert.throws(() => rollbackTargetOf(a, 'api'), code('UNKNOWN_SERVICE'))
  assert.throws(
    () => rollbackTargetOf(a, 'web'),
    (err: unknown) => code('NO_SUCH_RELEASE')(err) && (err as GrailError).hint === 'releases: none',
  )
  history(a.db, a.environment)
  assert.throws(() => rollbackTargetOf(a, 'web', 7), /no #7 release to roll back to/)
  a.db.close()
})

test('the next apply keeps the rollback only when the spec wants its image and config', async () => {
  const a = await setup()
  const [r1] = history(a.db, a.environment)
  const target = r1 as ReleaseRecord
  const svc = a.project.environments[a.environment]?.services.web
  assert.ok(svc)
  const want = (image: DesiredService['image'], configDigest = target.configDigest): DesiredService => ({
    service: 'web',
    replicas: 1,
    image,
    configDigest,
  })
  assert.equal(
    nextApplyAfter(want({ name: 'web', version: 1, digest: target.imageDigest }), target, svc),
    null,
  )
  assert.equal(nextApplyAfter(want({ name: 'web', version: 3, digest: digest('3') }), target, svc), 'web v3')
  assert.equal(
    nextApplyAfter(want({ name: 'web', version: 1, digest: target.imageDigest }, digest('f')), target, svc),
    "web v1 with the spec's config",
  )
  assert.equal(nextApplyAfter(want(null), target, svc), 'a new build of web')
  assert.equal(nextApplyAfter(undefined, target, svc), 'a new build of web')
  a.db.close()
})
