import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InvalidArgumentError } from 'commander'
import { wholeNumber } from './args.js'

test('whole numbers: digits only, at least the minimum', () => {
  const lines = wholeNumber('a number of lines')
  assert.equal(lines('12'), 12)
  for (const bad of ['abc', '', '1.5', '-2', '10x', '0', '1e3', String(2 ** 60)])
    assert.throws(() => lines(bad), InvalidArgumentError, bad)
  assert.equal(wholeNumber('a count', 0)('0'), 0)
})
