import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { ROOT, importsOf, shown, sourceFiles } from '../../test/helpers/import-graph.js'

/**
 * plan/ decides; it reads nothing and asks nothing. What a planner may not load, directly or through
 * what it imports: the modules that do I/O, and the parts of Grail that hold state, talk to a provider,
 * build, route, or orchestrate.
 */
const IO_MODULES = [
  'node:fs',
  'node:fs/promises',
  'node:child_process',
  'node:net',
  'node:http',
  'node:https',
  'node:http2',
  'node:os',
  'node:dgram',
  'node:worker_threads',
  'better-sqlite3',
]
const IO_DIRS = ['state', 'runtime', 'rollout', 'drift', 'build', 'proxy', 'lifecycle', 'engine', 'cli']

const PLAN = join(ROOT, 'src/plan')

/** Why a module may not be reached from plan/, or null. */
function forbidden(to: string): string | null {
  if (IO_MODULES.includes(to)) return `${to} does I/O`
  for (const d of IO_DIRS) {
    if (to.startsWith(join(ROOT, 'src', d, '/'))) return `src/${d}/ is not pure`
  }
  return null
}

/**
 * The violations reachable from plan/'s sources, each with its import chain. Type-only imports load
 * nothing and are not followed, but plan/ itself may not name a forbidden module even for a type.
 */
function violations(): string[] {
  const out: string[] = []
  const seen = new Set<string>()
  const queue: Array<{ file: string; chain: string[] }> = sourceFiles(PLAN, { withTests: false }).map(
    (file) => ({ file, chain: [shown(file)] }),
  )
  while (queue.length > 0) {
    const { file, chain } = queue.shift() as { file: string; chain: string[] }
    if (seen.has(file)) continue
    seen.add(file)
    for (const edge of importsOf(file)) {
      const inPlan = file.startsWith(`${PLAN}/`)
      if (edge.typeOnly && !inPlan) continue
      const why = forbidden(edge.to)
      if (why) {
        out.push(`${[...chain, shown(edge.to)].join(' → ')}: ${why}`)
        continue
      }
      if (edge.dynamic) out.push(`${[...chain, shown(edge.to)].join(' → ')}: a dynamic import in a planner`)
      if (!edge.typeOnly && edge.to.startsWith('/'))
        queue.push({ file: edge.to, chain: [...chain, shown(edge.to)] })
    }
  }
  return out
}

/** `Date.now()` and `new Date()` in plan/: the planner's time is the `now` it is given. */
function clockReads(): string[] {
  const out: string[] = []
  for (const file of sourceFiles(PLAN, { withTests: false })) {
    const lines = readFileSync(file, 'utf8').split('\n')
    lines.forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, '')
      if (
        /\bDate\.now\s*\(/.test(code) ||
        /\bnew\s+Date\s*\(\s*\)/.test(code) ||
        /\bperformance\.now\s*\(/.test(code)
      )
        out.push(`${shown(file)}:${i + 1}: ${line.trim()}`)
    })
  }
  return out
}

test('plan/ reaches no I/O module and no stateful part of Grail through its imports', () => {
  assert.deepEqual(violations(), [])
})

test('plan/ never reads the clock: the time is the now it is given', () => {
  assert.deepEqual(clockReads(), [])
})
