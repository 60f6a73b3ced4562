import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { ROOT, importsOf, shown, sourceFiles } from '../test/helpers/import-graph.js'

/**
 * The seams of docs/development.md, as edges of the import graph that must not exist: rollout/ executes a
 * plan and knows nothing of lifecycle (gc, promote, revoke, locks) or of drift, and lifecycle/ does not
 * drive a rollout (engine/ composes them). Every import counts: static, dynamic (`await import`), and
 * type-only, since a type from the other side is the first step of a loop.
 */
const FORBIDDEN: Array<{ from: string; to: string; why: string }> = [
  {
    from: 'rollout',
    to: 'lifecycle',
    why: 'rollout executes a plan; lifecycle is composed with it in engine/',
  },
  { from: 'lifecycle', to: 'rollout', why: 'lifecycle does not drive a rollout; engine/ does' },
  { from: 'rollout', to: 'drift', why: 'drift facts are gathered by engine/ and judged by plan/' },
]

const inDir = (file: string, dir: string) => file.startsWith(join(ROOT, 'src', dir, '/'))

/** The forbidden edges of the import graph of src/ (test files included), one line each. */
function forbiddenEdges(): string[] {
  const out: string[] = []
  for (const file of sourceFiles(join(ROOT, 'src'))) {
    for (const edge of importsOf(file)) {
      if (edge.to.startsWith('<computed import')) {
        out.push(`${edge.to}: an import graph rule cannot check it`)
        continue
      }
      for (const rule of FORBIDDEN) {
        if (inDir(file, rule.from) && inDir(edge.to, rule.to))
          out.push(
            `${shown(file)} → ${shown(edge.to)}${edge.dynamic ? ' (dynamic)' : ''}${edge.typeOnly ? ' (type)' : ''}: ${rule.why}`,
          )
      }
    }
  }
  return out
}

test('no import from rollout/ into lifecycle/ or drift/, nor from lifecycle/ into rollout/', () => {
  assert.deepEqual(forbiddenEdges(), [])
})
