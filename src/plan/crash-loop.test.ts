import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { CrashLoopSpec } from '../spec/types.js'
import { crashLoopOf } from './crash-loop.js'

const spec: CrashLoopSpec = { restarts: 3, window: 600_000, backoff: 30_000, maxBackoff: 120_000 }
const T = Date.parse('2026-01-01T12:00:00Z')
const at = (s: number, release = 1) => ({ release, at: T + s * 1000 })

describe('crash loop', () => {
  test('fewer restarts than the threshold are no loop', () => {
    assert.equal(crashLoopOf(spec, [at(0), at(10)], 1, T + 20_000), null)
  })

  test('the threshold reached: wait the backoff after the last restart, then try again', () => {
    const restarts = [at(0), at(10), at(41)]
    const during = crashLoopOf(spec, restarts, 1, T + 51_000)
    assert.equal(during?.waiting, true)
    assert.equal(during?.backoffMs, 30_000)
    assert.equal(during?.nextAttemptAt, T + 71_000)
    assert.equal(during?.summary, 'crash loop: 3 restarts in 41s, next attempt in 20s')
    const afterwards = crashLoopOf(spec, restarts, 1, T + 71_000)
    assert.equal(afterwards?.waiting, false)
    assert.equal(afterwards?.summary, 'crash loop: 3 restarts in 41s, retrying after a 30s backoff')
  })

  test('each further restart doubles the backoff, up to maxBackoff', () => {
    const four = [at(0), at(10), at(20), at(60)]
    assert.equal(crashLoopOf(spec, four, 1, T + 61_000)?.backoffMs, 60_000)
    const many = [at(0), at(10), at(20), at(60), at(130), at(260), at(400)]
    const loop = crashLoopOf(spec, many, 1, T + 401_000)
    assert.equal(loop?.backoffMs, 120_000)
    assert.equal(loop?.nextAttemptAt, T + 520_000)
  })

  test('restarts older than the window no longer count', () => {
    const restarts = [at(0), at(10), at(20)]
    assert.ok(crashLoopOf(spec, restarts, 1, T + 599_000))
    assert.equal(crashLoopOf(spec, restarts, 1, T + 601_000), null)
  })

  test('a new release starts with a clean slate', () => {
    const restarts = [at(0), at(10), at(20), at(30, 2)]
    assert.ok(crashLoopOf(spec, restarts, 1, T + 31_000))
    assert.equal(crashLoopOf(spec, restarts, 2, T + 31_000), null)
  })

  test('restarts after now (a clock that went back) are not counted', () => {
    assert.equal(crashLoopOf(spec, [at(0), at(10), at(20)], 1, T + 15_000), null)
  })
})
