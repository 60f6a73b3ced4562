import assert from 'node:assert/strict'
import { test } from 'node:test'
import { compareManifests, entryDifferences, type FileEntry, mergeLayers } from './file-manifest.js'

const file = (path: string, sha = 'a', mode = 0o644): FileEntry => ({
  path,
  type: 'file',
  mode,
  uid: 0,
  gid: 0,
  size: 1,
  sha256: sha,
})
const dir = (path: string): FileEntry => ({ path, type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0 })

test('layers merge bottom to top: later entries win, whiteouts delete a path and everything under it', () => {
  const files = mergeLayers([
    [
      dir('etc'),
      file('etc/a'),
      file('etc/b'),
      dir('srv'),
      dir('srv/www'),
      file('srv/www/x'),
      file('srv/www/y'),
    ],
    [file('etc/a', 'changed'), file('etc/.wh.b'), file('.wh.srv'), file('new')],
  ])
  assert.deepEqual([...files.keys()].sort(), ['/etc', '/etc/a', '/new'])
  assert.equal(files.get('/etc/a')?.sha256, 'changed')
})

test('an opaque whiteout empties its directory of lower entries but keeps what its own layer adds', () => {
  const files = mergeLayers([
    [dir('d'), file('d/old1'), file('d/old2'), file('e')],
    [dir('d'), file('d/.wh..wh..opq'), file('d/new')],
  ])
  assert.deepEqual([...files.keys()].sort(), ['/d', '/d/new', '/e'])
})

test('a whiteout in the root directory removes a top-level path', () => {
  const files = mergeLayers([[file('top'), file('keep')], [file('.wh.top')]])
  assert.deepEqual([...files.keys()], ['/keep'])
})

test('entry differences name content, mode, owner, type and link; times are not compared', () => {
  const a = file('x')
  assert.deepEqual(entryDifferences(a, { ...a }), [])
  assert.deepEqual(entryDifferences(a, { ...a, sha256: 'b' }), ['content'])
  assert.deepEqual(entryDifferences(a, { ...a, size: 2 }), ['content'])
  assert.deepEqual(entryDifferences(a, { ...a, mode: 0o600, uid: 1 }), ['mode', 'owner'])
  assert.deepEqual(entryDifferences(a, { ...a, type: 'symlink', linkname: 't' }), ['type', 'link'])
})

test('two manifests compare path by path', () => {
  const m1 = mergeLayers([[file('a'), file('b'), file('c')]])
  const m2 = mergeLayers([[file('a'), file('b', 'z'), file('d')]])
  assert.deepEqual(compareManifests(m1, m2), [
    { path: '/b', what: ['content'] },
    { path: '/c', what: ['only-in-first'] },
    { path: '/d', what: ['only-in-second'] },
  ])
  assert.deepEqual(compareManifests(m1, m1), [])
})
