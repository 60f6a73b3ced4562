import assert from 'node:assert/strict'
import { test } from 'node:test'
import { compileGlobs } from './glob.js'

const matches = (patterns: string[], paths: string[]) => {
  const m = compileGlobs(patterns)
  return paths.filter((p) => m(p))
}

test('braces, classes and ** match as in every glob tool', () => {
  const paths = ['keys/server.pem', 'server.key', 'index.html', 'a1.txt', 'c1.txt', 'x/tmp/y/z', 'tmp2']
  assert.deepEqual(matches(['*.{pem,key}'], paths), ['keys/server.pem', 'server.key'])
  assert.deepEqual(matches(['[ab][0-9].txt'], paths), ['a1.txt'])
  assert.deepEqual(matches(['**/tmp/**'], paths), ['x/tmp/y/z'])
})

test('a pattern without / matches at any depth, one with / from the root; * never crosses /', () => {
  const paths = ['cache', 'a/cache', 'a/cache/f', 'var/cache/f', 'x/var/cache/f', 'a/b.log', 'b.log']
  assert.deepEqual(matches(['cache'], paths), [
    'cache',
    'a/cache',
    'a/cache/f',
    'var/cache/f',
    'x/var/cache/f',
  ])
  assert.deepEqual(matches(['/var/cache'], paths), ['var/cache/f'])
  assert.deepEqual(matches(['var/cache/'], paths), ['var/cache/f'])
  assert.deepEqual(matches(['*/b.log'], paths), ['a/b.log'])
  assert.deepEqual(matches(['a*'], ['a/b', 'ab', 'b/ab', 'b/a/c']), ['a/b', 'ab', 'b/ab', 'b/a/c'])
})

test('dotfiles and dot directories match like other names', () => {
  const paths = ['.env', 'conf/.env', '.git/config', 'src/.cache/x']
  assert.deepEqual(matches(['.env'], paths), ['.env', 'conf/.env'])
  assert.deepEqual(matches(['*'], ['.env']), ['.env'])
  assert.deepEqual(matches(['**/.cache/**'], paths), ['src/.cache/x'])
})

test('no patterns, or only empty ones, match nothing', () => {
  assert.deepEqual(matches([], ['a']), [])
  assert.deepEqual(matches(['', '/'], ['a']), [])
})
