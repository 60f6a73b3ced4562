import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Action } from '../plan/index.js'
import { fixesDrift } from './fix.js'

const d = `sha256:${'1'.repeat(64)}` as const
const plan: Action[] = [
  { kind: 'replace', service: 'web', instance: 'web-a', release: 1, cause: 'drift', reason: 'drifted' },
  { kind: 'replace', service: 'web', instance: 'web-b', release: 1, cause: 'crashed', reason: 'crashed' },
  { kind: 'destroy', service: 'web', instance: 'web-x', cause: 'orphan', reason: 'orphan' },
  { kind: 'destroy', service: 'web', instance: 'web-old', cause: 'superseded', reason: 'superseded' },
  {
    kind: 'deploy',
    service: 'api',
    from: 1,
    image: { name: 'api', version: 2, digest: d },
    configDigest: d,
    reason: 'new release',
  },
  { kind: 'scale-up', service: 'web', release: 1, count: 1, reason: 'missing replica' },
  { kind: 'scale-down', service: 'web', instances: ['web-c'], reason: 'replicas 2 < 3' },
]
const ids = (xs: Action[]) => xs.map((x) => ('instance' in x ? x.instance : `${x.kind} ${x.service}`))

test('drift --fix replaces every instance and destroys orphans, and applies nothing else', () => {
  assert.deepEqual(ids(plan.filter((x) => fixesDrift(x))), ['web-a', 'web-b', 'web-x'])
})

test('drift --fix --instance replaces only that instance, and no orphan', () => {
  assert.deepEqual(ids(plan.filter((x) => fixesDrift(x, 'web-b'))), ['web-b'])
  // an orphan named by --instance is not destroyed: --instance only narrows replacements
  assert.deepEqual(ids(plan.filter((x) => fixesDrift(x, 'web-x'))), [])
  assert.deepEqual(ids(plan.filter((x) => fixesDrift(x, 'nosuch'))), [])
})
