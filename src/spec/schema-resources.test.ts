import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseMemory, resourcesSchema } from './schema-resources.js'

test('memory sizes: bytes, or k/m/g (binary, as Docker), with or without b/i', () => {
  assert.equal(parseMemory(1048576), 1048576)
  assert.equal(parseMemory('256m'), 256 * 1024 ** 2)
  assert.equal(parseMemory('512Mi'), 512 * 1024 ** 2)
  assert.equal(parseMemory('1.5g'), 1.5 * 1024 ** 3)
  assert.equal(parseMemory('64 KB'), 64 * 1024)
  for (const bad of ['', 'lots', '10x', '-1m', 1.5, 0]) assert.equal(parseMemory(bad), undefined, String(bad))
})

test('resources: limits below what the kernel takes and unknown keys are refused', () => {
  assert.deepEqual(resourcesSchema.parse({ memory: '64m', cpus: 0.5, pids: 50 }), {
    memory: 64 * 1024 ** 2,
    cpus: 0.5,
    pids: 50,
  })
  for (const bad of [{ memory: '1m' }, { cpus: 0 }, { pids: 1 }, { pids: 2.5 }, { disk: '1g' }])
    assert.ok(!resourcesSchema.safeParse(bad).success, JSON.stringify(bad))
})
