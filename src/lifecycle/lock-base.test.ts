// grail.lock's `base` pin of a `base: {registry}` image: read, validated naming the key, written in a
// fixed field order, and absent (not null) for every other base, so older locks read as they were.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { GrailError } from '../errors.js'
import { parseLock, serialiseLock } from './lock.js'
import type { LockedImage } from './lock.js'

const d = (c: string) => `sha256:${c.repeat(64)}`
const FILE = '/work/app/grail.lock'

const pinned: LockedImage = {
  digest: d('a'),
  spec: d('b'),
  parent: null,
  base: { ref: '127.0.0.1:5000/base/tiny:1', digest: d('f') },
  layers: [d('c')],
  packages: [],
}

const lockText = (entry: Record<string, unknown>) =>
  JSON.stringify({ lockVersion: 2, project: 'p', images: { app: entry } })

describe('grail.lock base pins', () => {
  test('written between parent and layers, and read back the same', () => {
    // fields in another order in memory: the file's order is fixed
    const shuffled = {
      packages: [],
      layers: [d('c')],
      base: { digest: d('f'), ref: pinned.base?.ref },
      parent: null,
      spec: d('b'),
      digest: d('a'),
    } as unknown as LockedImage
    const text = serialiseLock('p', { app: shuffled })
    assert.deepEqual(Object.keys(JSON.parse(text).images.app), [
      'digest',
      'spec',
      'parent',
      'base',
      'layers',
      'packages',
    ])
    assert.deepEqual(Object.keys(JSON.parse(text).images.app.base), ['ref', 'digest'])
    assert.equal(text, serialiseLock('p', { app: pinned }))
    assert.deepEqual(parseLock(text, FILE).images.app, pinned)
    assert.equal(JSON.parse(text).lockVersion, 2)
  })

  test('an entry without a pin reads and writes without one (no "base": null)', () => {
    const { base: _, ...plain } = pinned
    const lock = parseLock(lockText(plain), FILE)
    assert.equal('base' in (lock.images.app ?? {}), false)
    assert.doesNotMatch(serialiseLock('p', lock.images), /"base"/)
  })

  test('a pin that is not {ref, digest} is refused, naming the key', () => {
    for (const base of [
      null,
      'x',
      { ref: 'r/x:1' },
      { ref: '', digest: d('f') },
      { ref: 'r/x:1', digest: 'sha256:abc' },
      { ref: 7, digest: d('f') },
    ]) {
      assert.throws(
        () => parseLock(lockText({ ...pinned, base }), FILE),
        (err: unknown) => {
          assert.ok(err instanceof GrailError)
          assert.equal(err.code, 'LOCK_INVALID')
          assert.match(err.message, /^\/work\/app\/grail\.lock: images\.app\.base is not \{"ref"/)
          return true
        },
        JSON.stringify(base),
      )
    }
  })

  test('extra keys in a pin are dropped on rewrite', () => {
    const lock = parseLock(lockText({ ...pinned, base: { ...pinned.base, at: 'yesterday' } }), FILE)
    assert.deepEqual(lock.images.app?.base, pinned.base)
  })
})
