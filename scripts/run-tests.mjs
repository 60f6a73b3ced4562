#!/usr/bin/env node
// Runs every test file (unit tests next to the code, integration and e2e tests under test/) with node's
// test runner, shows the spec report, and ends with one summary line: "N passed, N failed, N skipped".
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { summaryLine, tapCounts } from './test-summary.mjs'

const root = new URL('..', import.meta.url).pathname
const args = process.argv.slice(2)
const roots = args.length > 0 ? args : ['src', 'dashboard', 'test']

function find(dir, out) {
  let st
  try {
    st = statSync(dir)
  } catch {
    return out
  }
  if (st.isFile()) {
    if (dir.endsWith('.test.ts')) out.push(dir)
    return out
  }
  for (const name of readdirSync(dir).sort()) {
    if (name === 'node_modules' || name.startsWith('.')) continue
    find(join(dir, name), out)
  }
  return out
}

const files = roots.flatMap((r) => find(join(root, r), [])).map((f) => relative(root, f))
if (files.length === 0) {
  console.error(`no test files under ${roots.join(', ')}`)
  process.exit(1)
}
// Unit tests run two files at a time; tests against real engines run one file at a time, so that load
// tests measure Grail and not a neighbour's mmdebstrap.
const isUnit = (f) => f.startsWith('src/') || f.startsWith('dashboard/')
const groups = [
  { files: files.filter(isUnit), concurrency: process.env.TEST_CONCURRENCY ?? 2 },
  { files: files.filter((f) => !isUnit(f)), concurrency: 1 },
].filter((g) => g.files.length > 0)

function runGroup(group) {
  const tapDir = mkdtempSync(join(tmpdir(), 'grail-tap-'))
  const tap = join(tapDir, 'report.tap')
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${group.concurrency}`,
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      '--test-reporter=tap',
      `--test-reporter-destination=${tap}`,
      ...group.files,
    ],
    { cwd: root, stdio: 'inherit' },
  )
  return new Promise((resolve) => {
    child.on('close', (code) => {
      let counts = { code, passed: 0, failed: 1, skipped: 0, todo: 0 }
      try {
        counts = { code, ...tapCounts(readFileSync(tap, 'utf8')) }
      } catch {
        // no report: the run itself failed, and counts as one failure
      }
      rmSync(tapDir, { recursive: true, force: true })
      resolve(counts)
    })
  })
}

const total = { passed: 0, failed: 0, skipped: 0, todo: 0 }
let ok = true
for (const group of groups) {
  const r = await runGroup(group)
  for (const k of Object.keys(total)) total[k] += r[k]
  ok = ok && r.code === 0
}
console.log(summaryLine(total))
process.exit(ok && total.failed === 0 && total.passed > 0 ? 0 : 1)
