import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { RecycleSpec } from '../spec/types.js'
import { dueForRecycle, inWindow, jitterFraction } from './recycle.js'

const H = 3_600_000
const D = 24 * H
const NOW = Date.parse('2026-11-27T03:30:00Z')
const at = (ageMs: number) => new Date(NOW - ageMs).toISOString()
const spec = (o: Partial<RecycleSpec> = {}): RecycleSpec => ({
  maxAge: 7 * D,
  jitter: 0,
  order: 'oldest',
  ...o,
})

test('instances older than maxAge are due, oldest first, with the age in the reason', () => {
  const due = dueForRecycle(
    spec(),
    [
      { id: 'a', createdAt: at(8 * D), drift: 0 },
      { id: 'b', createdAt: at(6 * D), drift: 0 },
      { id: 'c', createdAt: at(9 * D + 5 * H), drift: 0 },
    ],
    NOW,
  )
  assert.deepEqual(
    due.map((d) => [d.id, d.reason]),
    [
      ['c', 'age 9d5h > maxAge 7d'],
      ['a', 'age 8d > maxAge 7d'],
    ],
  )
  assert.deepEqual(
    dueForRecycle({ jitter: 0, order: 'oldest' }, [{ id: 'a', createdAt: at(99 * D), drift: 0 }], NOW),
    [],
  )
})

test('jitter adds a stable per-instance share, so replacements spread out but plans agree', () => {
  const f = jitterFraction('web-r1-abc')
  assert.equal(f, jitterFraction('web-r1-abc'))
  assert.ok(f >= 0 && f < 1)
  const ids = Array.from({ length: 50 }, (_, i) => `web-r1-${i}`)
  const fractions = ids.map(jitterFraction)
  assert.ok(Math.max(...fractions) - Math.min(...fractions) > 0.5, 'spread over the range')
  const candidates = ids.map((id) => ({ id, createdAt: at(7 * D + 12 * H), drift: 0 }))
  const due = dueForRecycle(spec({ jitter: D }), candidates, NOW)
  assert.ok(due.length > 10 && due.length < 40, `about half are due (${due.length})`)
  for (const d of due) assert.ok(jitterFraction(d.id) < 0.5)
  assert.match(due[0]?.reason ?? '', /\(\+\d+h\d*m?\d*s? jitter\)$|\(\+\d+\w+ jitter\)$/)
})

test('outside the window nothing is due; windows may wrap midnight', () => {
  const old = [{ id: 'a', createdAt: at(30 * D), drift: 0 }]
  assert.equal(dueForRecycle(spec({ window: '02:00-05:00' }), old, NOW).length, 1)
  assert.equal(dueForRecycle(spec({ window: '04:00-05:00' }), old, NOW).length, 0)
  assert.ok(inWindow('23:00-04:00', NOW))
  assert.ok(!inWindow('04:00-23:00', NOW))
  assert.ok(inWindow(undefined, NOW))
})

test('most-drifted order puts the instances with most drift first, then the oldest', () => {
  const due = dueForRecycle(
    spec({ order: 'most-drifted' }),
    [
      { id: 'old-clean', createdAt: at(10 * D), drift: 0 },
      { id: 'drifted', createdAt: at(8 * D), drift: 4 },
      { id: 'older-clean', createdAt: at(11 * D), drift: 0 },
    ],
    NOW,
  )
  assert.deepEqual(
    due.map((d) => d.id),
    ['drifted', 'older-clean', 'old-clean'],
  )
})
