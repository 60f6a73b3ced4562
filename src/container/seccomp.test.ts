import assert from 'node:assert/strict'
import { test } from 'node:test'
import { GrailError } from '../errors.js'
import { defaultSeccomp } from './seccomp.js'

test('an architecture without a profile is a user error naming it, not a bug', () => {
  assert.throws(
    () => defaultSeccomp('mips'),
    (err: unknown) =>
      err instanceof GrailError &&
      err.code === 'UNSUPPORTED_ARCH' &&
      /architecture mips/.test(err.message) &&
      /x64 or arm64/.test(err.hint ?? ''),
  )
  assert.ok(Array.isArray(defaultSeccomp('x64').syscalls))
})
