import assert from 'node:assert/strict'
import { test } from 'node:test'
import { contentHash, STAMP_SPEC_FILES, stampableArgv } from './noop-stamp.js'
import { SPEC_FILES } from './project.js'

test('the fast path looks for the spec files project.ts looks for', () => {
  assert.deepEqual(STAMP_SPEC_FILES, SPEC_FILES)
})

test('only `build` and `--json build` are answered from a stamp', () => {
  assert.ok(stampableArgv(['build']))
  assert.ok(stampableArgv(['--json', 'build']))
  assert.ok(stampableArgv(['build', '--json']))
  for (const argv of [[], ['build', 'app'], ['build', '--verify'], ['-C', 'x', 'build'], ['--json']])
    assert.ok(!stampableArgv(argv), argv.join(' '))
})

test('the database hash changes with any byte, its position or the length', () => {
  const base = Buffer.alloc(4099, 7)
  const seen = new Set([contentHash(base)])
  for (const i of [0, 1, 2, 3, 2048, 4095, 4096, 4098]) {
    const b = Buffer.from(base)
    b[i] = 8
    seen.add(contentHash(b))
  }
  seen.add(contentHash(base.subarray(0, 4098)))
  seen.add(contentHash(Buffer.concat([base, Buffer.from([7])])))
  assert.equal(seen.size, 11)
  // unaligned views hash as their bytes do
  const copy = Buffer.alloc(4100)
  base.copy(copy, 1)
  assert.equal(contentHash(copy.subarray(1)), contentHash(base))
})
