import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatDuration, parseDuration } from './duration.js'
import { closest, editDistance } from './suggest.js'

describe('parseDuration', () => {
  it('reads units, combinations, fractions and plain milliseconds', () => {
    const cases: Array<[string | number, number]> = [
      ['500ms', 500],
      ['2s', 2000],
      ['10m', 600_000],
      ['24h', 86_400_000],
      ['7d', 604_800_000],
      ['1h30m', 5_400_000],
      ['1.5s', 1500],
      ['0s', 0],
      [250, 250],
      [0, 0],
    ]
    for (const [input, ms] of cases) assert.equal(parseDuration(input), ms, String(input))
  })

  it('rejects what is not a duration', () => {
    for (const input of ['2', '2 s', 's', '-1s', '1w', '', '1h 30m', -5, Number.NaN]) {
      assert.equal(parseDuration(input), undefined, String(input))
    }
  })

  it('formats milliseconds back', () => {
    assert.equal(formatDuration(5_400_000), '1h30m')
    assert.equal(formatDuration(1500), '1s500ms')
    assert.equal(formatDuration(0), '0s')
  })
})

describe('did you mean', () => {
  it('counts a transposition as one edit', () => {
    assert.equal(editDistance('entrypiont', 'entrypoint'), 1)
    assert.equal(editDistance('abc', 'abc'), 0)
  })

  it('finds typos, case and separator slips, and prefixes; not unrelated words', () => {
    assert.equal(closest('entrypiont', ['copy', 'entrypoint', 'cmd']), 'entrypoint')
    assert.equal(closest('max_surge', ['maxSurge', 'maxUnavailable']), 'maxSurge')
    assert.equal(closest('bluegreen', ['rolling', 'blue-green', 'canary']), 'blue-green')
    assert.equal(closest('rolling-update', ['rolling', 'blue-green', 'canary']), 'rolling')
    assert.equal(closest('replcas', ['replicas', 'port']), 'replicas')
    assert.equal(closest('frobnicate', ['copy', 'run', 'env']), undefined)
  })
})
