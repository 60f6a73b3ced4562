import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, test } from 'node:test'
import type { RuntimeProvider } from '../runtime/types.js'
import { liveInstances, openDb, recordInstance } from '../state/index.js'
import { STOP_CONCURRENCY, removeInstances } from './instances.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

test('removeInstances stops several at once, never more than the bound (fake provider counting stops in flight)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-stop-'))
  dirs.push(dir)
  const db = openDb(join(dir, 'state.db'))
  const ids = Array.from({ length: 20 }, (_, i) => `web-r1-${i}`)
  for (const id of ids)
    recordInstance(db, { id, service: 'web', environment: 'local', releaseNumber: 1, provider: 'fake' })
  let inFlight = 0
  let most = 0
  const stopped: string[] = []
  // a stop that waits, as one waiting on a process to exit does
  const provider = {
    name: 'fake',
    async stop(h: { id: string }) {
      inFlight++
      most = Math.max(most, inFlight)
      await sleep(20)
      inFlight--
      stopped.push(h.id)
    },
    async destroy() {},
  } as unknown as RuntimeProvider
  await removeInstances(
    db,
    provider,
    ids.map((id) => ({ id, reason: 'grail down' })),
    { graceMs: 1000 },
  )
  assert.deepEqual(stopped.sort(), [...ids].sort())
  assert.equal(most, STOP_CONCURRENCY)
  assert.deepEqual(liveInstances(db, 'local'), [])
})
