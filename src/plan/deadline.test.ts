import assert from 'node:assert/strict'
import { test } from 'node:test'
import { nextDeadline, nextWindowOpen } from './deadline.js'
import type { PlanInput } from './plan.js'
import { jitterFraction } from './recycle.js'

const NOW = Date.parse('2026-12-01T10:00:00Z')
const at = (ms: number) => new Date(NOW + ms).toISOString()

const input = (over: Partial<PlanInput> = {}): PlanInput => ({
  environment: 'prod',
  now: NOW,
  services: [
    {
      service: 'web',
      image: 'web',
      replicas: 2,
      configDigest: `sha256:${'a'.repeat(64)}`,
      recycle: { maxAge: 60_000, jitter: 0, order: 'oldest' },
      versions: [],
    },
  ],
  releases: {},
  instances: [
    {
      id: 'a',
      service: 'web',
      release: 1,
      known: true,
      state: 'running',
      health: 'healthy',
      createdAt: at(-50_000),
    },
    {
      id: 'b',
      service: 'web',
      release: 1,
      known: true,
      state: 'running',
      health: 'healthy',
      createdAt: at(-10_000),
    },
  ],
  ...over,
})

test('the next deadline is the earliest of hotfix expiry, recycle age and crash-loop backoff', () => {
  // a is due 10 s (and 1 ms) from now, b 50 s
  assert.equal(nextDeadline(input(), { waiting: [] }), NOW + 10_001)
  const hotfix = input({ hotfixes: [{ id: 1, instance: 'b', expiresAt: at(3_000) }] })
  assert.equal(nextDeadline(hotfix, { waiting: [] }), NOW + 3_000)
  const waiting = [{ service: 'web', instance: null, reason: 'x', nextAttemptAt: at(2_000), log: [] }]
  assert.equal(nextDeadline(hotfix, { waiting }), NOW + 2_000)
  // what is already due or past is not a deadline: the plan acts on it now
  const past = input({ hotfixes: [{ id: 1, instance: 'b', expiresAt: at(-1) }] })
  assert.equal(nextDeadline(past, { waiting: [] }), NOW + 10_001)
  assert.equal(nextDeadline(input({ services: [] }), { waiting: [] }), undefined)
})

test('jitter moves an instance its share later; an overdue instance outside its window waits for it to open', () => {
  const jittered = input()
  const svc = jittered.services[0]
  if (svc?.recycle) svc.recycle = { ...svc.recycle, jitter: 20_000 }
  assert.equal(nextDeadline(jittered, { waiting: [] }), NOW + 10_001 + 20_000 * jitterFraction('a'))
  const windowed = input({
    instances: [
      {
        id: 'a',
        service: 'web',
        release: 1,
        known: true,
        state: 'running',
        health: 'healthy',
        createdAt: at(-90_000),
      },
    ],
  })
  const w = windowed.services[0]
  if (w?.recycle) w.recycle = { ...w.recycle, window: '02:00-05:00' }
  assert.equal(nextDeadline(windowed, { waiting: [] }), Date.parse('2026-12-02T02:00:00Z'))
  assert.equal(nextWindowOpen('12:30-13:00', NOW), Date.parse('2026-12-01T12:30:00Z'))
  assert.equal(nextWindowOpen('23:00-01:00', NOW), Date.parse('2026-12-01T23:00:00Z'))
})
