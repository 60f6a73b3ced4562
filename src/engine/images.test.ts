import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import type { Db } from '../state/index.js'
import { insertImage, insertRelease, openDb, setImageStatus, setReleaseStatus } from '../state/index.js'
import { imageCatalog, runningIn } from './images.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

async function tempDb(): Promise<Db> {
  const dir = await mkdtemp(join(tmpdir(), 'grail-engine-images-'))
  dirs.push(dir)
  return openDb(join(dir, 'state.db'))
}

const digest = (c: string) => `sha256:${c.repeat(64)}` as const

function image(db: Db, name: string, d: string, parent: string | null, size = 10) {
  return insertImage(db, {
    name,
    digest: digest(d),
    configDigest: digest('c'),
    buildKey: `${name}-${d}`,
    parentDigest: parent === null ? null : digest(parent),
    base: { kind: 'scratch' },
    gitCommit: null,
    createdAt: new Date().toISOString(),
    size,
    packages: [],
  })
}

function release(
  db: Db,
  environment: string,
  service: string,
  img: { name: string; version: number; digest: string },
) {
  const r = insertRelease(db, {
    service,
    environment,
    imageName: img.name,
    imageVersion: img.version,
    imageDigest: img.digest as ReturnType<typeof digest>,
    configDigest: digest('e'),
    config: { env: {} },
  })
  setReleaseStatus(db, service, r.number, 'active')
  return r
}

test('an image built on a base version that is no longer the newest is out of date, naming both', async () => {
  const db = await tempDb()
  image(db, 'base', '1', null) // base v1
  image(db, 'web', '2', '1') // web v1 on base v1
  image(db, 'base', '3', null) // base v2
  const { images } = imageCatalog(db)
  const web = images.find((i) => i.name === 'web')
  assert.equal(web?.outOfDate, 'built on base v1, v2 is newer')
  assert.deepEqual(
    images.filter((i) => i.name === 'base').map((i) => [i.version, i.outOfDate]),
    [
      [2, null],
      [1, null],
    ],
  )
  // a newer base version that is revoked does not make its children out of date
  setImageStatus(db, 'base', 2, 'revoked', 'CVE')
  assert.equal(imageCatalog(db).images.find((i) => i.name === 'web')?.outOfDate, null)
  db.close()
})

test('a capture (parent of the same name) is out of date through the base of its lineage', async () => {
  const db = await tempDb()
  image(db, 'base', '1', null) // base v1
  image(db, 'web', '2', '1') // web v1 on base v1
  image(db, 'web', '4', '2') // web v2: captured from web v1
  image(db, 'base', '3', null) // base v2
  const web2 = imageCatalog(db).images.find((i) => i.name === 'web' && i.version === 2)
  assert.equal(web2?.outOfDate, 'built on base v1, v2 is newer')
  db.close()
})

test('in use is what an active release runs in any environment; groups count versions and bytes', async () => {
  const db = await tempDb()
  const v1 = image(db, 'web', '1', null, 100)
  const v2 = image(db, 'web', '2', null, 200)
  image(db, 'web', '3', null, 400)
  setImageStatus(db, 'web', 3, 'revoked', 'bad')
  release(db, 'prod', 'web', v1)
  const old = release(db, 'local', 'web', v2)
  setReleaseStatus(db, 'web', old.number, 'superseded') // superseded: not in use
  const cat = imageCatalog(db)
  assert.deepEqual(cat.inUse, [v1.digest])
  assert.deepEqual(cat.groups, [
    { group: 'revoked', versions: 1, bytes: 400 },
    { group: 'active', versions: 1, bytes: 200 },
    { group: 'in use', versions: 1, bytes: 100 },
  ])
  assert.deepEqual(runningIn(db, new Set([v1.digest, v2.digest])), ['prod (web)'])
  assert.deepEqual(runningIn(db, new Set([digest('9')])), [])
  db.close()
})
