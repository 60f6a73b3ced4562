import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually } from './contract.js'

test('eventually retries a failing assertion until it passes and returns its value', async () => {
  let calls = 0
  const value = await eventually(
    () => {
      calls++
      assert.ok(calls >= 3, `not yet (${calls})`)
      return 'seen'
    },
    { timeoutMs: 2000, intervalMs: 5 },
  )
  assert.equal(value, 'seen')
  assert.equal(calls, 3)
})

test('eventually rethrows the last failure once the time is up', async () => {
  let calls = 0
  const started = Date.now()
  await assert.rejects(
    eventually(
      async () => {
        calls++
        throw new Error(`attempt ${calls}`)
      },
      { timeoutMs: 100, intervalMs: 10 },
    ),
    (err: Error) => err.message === `attempt ${calls}` && calls > 1,
  )
  assert.ok(Date.now() - started >= 90, 'it kept trying until the timeout')
})

test('eventually with no time left tries once', async () => {
  let calls = 0
  await assert.rejects(
    eventually(
      () => {
        calls++
        throw new Error('never')
      },
      { timeoutMs: 0 },
    ),
    /never/,
  )
  assert.equal(calls, 1)
})
