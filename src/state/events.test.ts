import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { makeRedactor } from '../util/redact.js'
import { openDb } from './db.js'
import { appendEvent, listEvents, useRedactor } from './events.js'

test('an event is stored without the secrets of its database: in argv, output, diffs and keys named like one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-events-'))
  const db = openDb(join(dir, 'state.db'))
  try {
    appendEvent(db, 'before', 'x', { out: 'PGPASSWORD=early-secret' })
    useRedactor(db, makeRedactor(['hunter2-long']))
    appendEvent(db, 'hotfix.applied', 'web-1', {
      command: ['sh', '-c', 'echo hunter2-long'],
      stdout: 'hunter2-long\n',
      changes: [{ path: '/etc/app.conf', diff: '-pw=old\n+pw=hunter2-long\n' }],
      env: { API_TOKEN: 'tok-1234' },
    })
    const raw = (db.prepare('SELECT data FROM events').all() as Array<{ data: string }>)
      .map((r) => r.data)
      .join('\n')
    for (const s of ['hunter2-long', 'early-secret', 'tok-1234']) assert.ok(!raw.includes(s), s)
    const [ev] = listEvents(db, { subject: 'web-1' })
    assert.deepEqual(ev?.data, {
      command: ['sh', '-c', 'echo [redacted]'],
      stdout: '[redacted]\n',
      changes: [{ path: '/etc/app.conf', diff: '-pw=old\n+pw=[redacted]\n' }],
      env: { API_TOKEN: '[redacted]' },
    })
  } finally {
    db.close()
    await rm(dir, { recursive: true, force: true })
  }
})
