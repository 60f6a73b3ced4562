import assert from 'node:assert/strict'
import { test } from 'node:test'
import { NORMAL_VARIATION, VERIFY_VARIATION, inTimeNamespace, nextSecond, variedEnv } from './variation.js'

test('a normal build leaves the environment as the spec gives it', () => {
  assert.deepEqual(variedEnv(['PATH=/bin', 'A=1'], NORMAL_VARIATION), ['PATH=/bin', 'A=1'])
})

test('the verify build adds a time zone and a locale, and reverses the order', () => {
  assert.deepEqual(variedEnv(['PATH=/bin', 'A=1'], VERIFY_VARIATION), [
    'LANGUAGE=fr_CH',
    'LC_ALL=fr_CH.UTF-8',
    'LANG=fr_CH.UTF-8',
    'TZ=<+1345>-13:45',
    'A=1',
    'PATH=/bin',
  ])
})

test('what the image or step sets is kept: TZ, and any locale variable stops the locale being added', () => {
  for (const locale of ['LANG=C', 'LC_MESSAGES=C', 'LANGUAGE=en'])
    assert.deepEqual(variedEnv(['TZ=UTC', locale], VERIFY_VARIATION), [locale, 'TZ=UTC'])
})

test('runc runs in a time namespace only when there is an offset', () => {
  const cmd = { file: 'runc', args: ['run', 'x'] }
  assert.deepEqual(inTimeNamespace(cmd, 0), cmd)
  const wrapped = inTimeNamespace(cmd, 60)
  if (wrapped.file === 'runc') return // a kernel without time namespaces
  assert.deepEqual(wrapped, {
    file: 'unshare',
    args: ['--time', '--monotonic', '60', '--boottime', '60', 'runc', 'run', 'x'],
  })
})

test('nextSecond returns once the clock reads a later second', async () => {
  const since = Date.now()
  await nextSecond(since)
  assert.ok(Math.floor(Date.now() / 1000) > Math.floor(since / 1000))
})
