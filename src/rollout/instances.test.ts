import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { isInstanceId } from '../runtime/local/layout.js'
import { NAME_MAX, NAME_PATTERN, RESERVED_SERVICE_PREFIX } from '../spec/schema-common.js'
import { MAX_INSTANCE_ID, instanceId } from './instances.js'

/** Every service name the schema accepts. */
const serviceName = fc
  .stringMatching(NAME_PATTERN)
  .filter((s) => s.length <= NAME_MAX && !`${s}-`.startsWith(RESERVED_SERVICE_PREFIX))

test('every valid service name gives a valid instance id at every release number', () => {
  fc.assert(
    fc.property(
      serviceName,
      fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      fc.stringMatching(/^[0-9a-f]{6}$/),
      (service, release, suffix) => {
        const id = instanceId(service, release, suffix)
        assert.ok(id.length <= MAX_INSTANCE_ID, id)
        assert.ok(isInstanceId(id), id)
        assert.ok(id.endsWith(`-r${release}-${suffix}`), id)
      },
    ),
    { numRuns: 2000 },
  )
})

test('a short service name is kept whole; a 63-character one is cut only as far as the release needs', () => {
  assert.equal(instanceId('web', 12, 'abcdef'), 'web-r12-abcdef')
  const long = 'a'.repeat(63)
  assert.equal(instanceId(long, 1, 'abcdef'), `${'a'.repeat(53)}-r1-abcdef`)
  assert.equal(instanceId(long, 10, 'abcdef'), `${'a'.repeat(52)}-r10-abcdef`)
  assert.equal(instanceId(long, Number.MAX_SAFE_INTEGER, 'abcdef').length, 63)
  // a cut that ends on '-' drops it, so the id never holds '--' from the cut
  assert.equal(
    instanceId(`${'a'.repeat(51)}-b${'c'.repeat(11)}`, 10, 'abcdef'),
    `${'a'.repeat(51)}-r10-abcdef`,
  )
})
