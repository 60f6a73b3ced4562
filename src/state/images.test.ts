import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { openDb } from './db.js'
import { buildInputsOf, findImageByKey, listImages, markCollected, recordImageVersion } from './images.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

const fields = (digest: string, buildKey: string) => ({
  name: 'web',
  digest: `sha256:${digest.repeat(64)}` as const,
  configDigest: `sha256:${'c'.repeat(64)}` as const,
  buildKey,
  parentDigest: null,
  base: { kind: 'scratch' },
  gitCommit: null,
  createdAt: new Date().toISOString(),
  size: 1,
  packages: [],
})

test('one version per digest: another build key of a digest the catalog has finds that version', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-img-'))
  dirs.push(dir)
  const db = openDb(join(dir, 'state.db'))
  const inputs = { base: { key: 'b', description: 'scratch' }, steps: [] }
  const first = recordImageVersion(db, fields('1', 'k1'), inputs)
  assert.deepEqual([first.record.version, first.created], [1, true])
  const again = recordImageVersion(db, fields('1', 'k1'))
  assert.deepEqual([again.record.version, again.created], [1, false])
  const other = recordImageVersion(db, fields('1', 'k2'), inputs)
  assert.deepEqual([other.record.version, other.created], [1, false])
  assert.equal(findImageByKey(db, 'web', 'k1')?.version, 1)
  assert.equal(findImageByKey(db, 'web', 'k2')?.version, 1)
  assert.deepEqual(buildInputsOf(db, 'web', 1), inputs)
  assert.equal(recordImageVersion(db, fields('2', 'k3')).record.version, 2)
  assert.deepEqual(
    listImages(db, 'web').map((i) => i.version),
    [2, 1],
  )
  // a collected version's number is never reused, and its key finds nothing until it is built again
  markCollected(db, [{ name: 'web', version: 1 }])
  assert.equal(findImageByKey(db, 'web', 'k1'), undefined)
  const rebuilt = recordImageVersion(db, fields('1', 'k1'))
  assert.deepEqual([rebuilt.record.version, rebuilt.created], [3, true])
  assert.equal(findImageByKey(db, 'web', 'k1')?.version, 3)
  db.close()
})
