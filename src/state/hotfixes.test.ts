import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { openDb } from './db.js'
import { finishHotfix, insertHotfix, listHotfixes, markInterruptedHotfixes } from './hotfixes.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

test('a hotfix is recorded running before its command, completed with its changes, or marked interrupted', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-hotfix-'))
  dirs.push(dir)
  const db = openDb(join(dir, 'state.db'))
  const base = {
    environment: 'local',
    service: 'web',
    actor: 'ops',
    reason: 'typo',
    expiresAt: '2030-01-01T00:00:00.000Z',
  }
  const done = insertHotfix(db, { ...base, instance: 'web-1', command: ['sh', '-c', 'true'] })
  const killed = insertHotfix(db, { ...base, instance: 'web-2', command: ['true'] })
  assert.equal(done.status, 'running')
  finishHotfix(db, done.id, 0, [{ kind: 'C', path: '/etc/x', sha256: 'ab' }])
  assert.equal(markInterruptedHotfixes(db, 'local'), 1)
  const [a, b] = listHotfixes(db, { environment: 'local' })
  assert.deepEqual(
    [a?.status, a?.exitCode, a?.changes],
    ['recorded', 0, [{ kind: 'C', path: '/etc/x', sha256: 'ab' }]],
  )
  assert.deepEqual([b?.id, b?.status], [killed.id, 'interrupted'])
  assert.deepEqual(a?.command, ['sh', '-c', 'true'])
  db.close()
})
