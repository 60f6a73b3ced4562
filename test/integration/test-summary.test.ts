// The summary line of scripts/run-tests.mjs, from what node's test runner really reports: a skipped case
// is counted as skipped and never as passed, a cancelled one as failed.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { promisify } from 'node:util'
// @ts-expect-error: a plain .mjs script without types
import { summaryLine, tapCounts } from '../../scripts/test-summary.mjs'
import { removeDir, tempProject } from '../helpers/project.js'

const FIXTURE = `import { test, describe } from 'node:test'
// what a test prints to stdout comes out as a TAP comment: this line reads "# pass 99"
console.log('pass 99')
test('passes', () => {})
test('skips itself', (t) => { t.skip('no engine'); })
test('skipped by option', { skip: 'no engine' }, () => {})
describe('a suite', () => {
  test('passes inside', () => {})
  test('skips inside', (t) => t.skip())
})
test('todo', { todo: true }, () => { throw new Error('not yet') })
test('fails', () => { throw new Error('boom') })
`

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await removeDir(d)
})

async function tapOf(source: string): Promise<string> {
  const dir = await tempProject({ 'fixture.test.mjs': source })
  dirs.push(dir)
  // a runner inside a test run reports to its parent unless told it is a run of its own
  const { NODE_TEST_CONTEXT: _, ...env } = process.env
  const run = promisify(execFile)(
    process.execPath,
    ['--test', '--test-reporter=tap', join(dir, 'fixture.test.mjs')],
    { env },
  )
  // the fixture has a failing case: node exits 1, the report is still on stdout
  const out = await run.then(
    (r) => r.stdout,
    (err: { stdout: string }) => err.stdout,
  )
  return out
}

test('a file with skips, a todo and a failure is summed as node reports it, skips never as passes', async () => {
  const counts = tapCounts(await tapOf(FIXTURE))
  assert.deepEqual(counts, { passed: 2, failed: 1, skipped: 3, todo: 1 })
  assert.equal(summaryLine(counts), '2 passed, 1 failed, 3 skipped, 1 todo')
})

test('the summary names skipped cases even when there are none', () => {
  assert.equal(summaryLine({ passed: 4, failed: 0, skipped: 0, todo: 0 }), '4 passed, 0 failed, 0 skipped')
})

test('a cancelled test counts as failed, and the totals come from the last summary lines', () => {
  const text = [
    '# pass 7',
    'ok 1 - x',
    '# tests 3',
    '# pass 1',
    '# fail 0',
    '# cancelled 2',
    '# skipped 0',
  ].join('\n')
  assert.deepEqual(tapCounts(text), { passed: 1, failed: 2, skipped: 0, todo: 0 })
})
