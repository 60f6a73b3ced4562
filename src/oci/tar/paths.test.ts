import assert from 'node:assert/strict'
import { test } from 'node:test'
import { findOpaqueCommand, mknodCommand, parseOpaqueDirs, setOpaqueCommand } from './commands.js'
import { comparePaths, normaliseEntryPath } from './paths.js'
import { deviceNumbers } from './scan.js'

test('archive names are normalised, or rejected when they could leave the root', () => {
  assert.deepEqual(normaliseEntryPath('./usr//bin/./ls'), { path: 'usr/bin/ls' })
  assert.deepEqual(normaliseEntryPath('etc/'), { path: 'etc' })
  assert.deepEqual(normaliseEntryPath('./'), { path: '' })
  assert.deepEqual(normaliseEntryPath('..foo/..bar'), { path: '..foo/..bar' })
  assert.deepEqual(normaliseEntryPath('a/../b'), { problem: "'..' component" })
  assert.deepEqual(normaliseEntryPath('..'), { problem: "'..' component" })
  assert.deepEqual(normaliseEntryPath('/etc/x'), { problem: 'absolute path' })
  assert.deepEqual(normaliseEntryPath(''), { problem: 'empty name' })
  assert.deepEqual(normaliseEntryPath('a\0b'), { problem: 'NUL byte in name' })
})

test('paths sort by bytes, component by component, parents first', () => {
  const paths = ['a-b', 'a/b', 'B', 'a', 'é', 'a/.wh..wh..opq', 'z', 'a/-x']
  assert.deepEqual([...paths].sort(comparePaths), [
    'B',
    'a',
    'a/-x',
    'a/.wh..wh..opq',
    'a/b',
    'a-b',
    'z',
    'é',
  ])
})

test('getfattr output is parsed byte-wise, keeping only value y', () => {
  const out = Buffer.concat([
    Buffer.from('# file: /up/with\\040space\ntrusted.overlay.opaque="y"\n\n'),
    Buffer.from('# file: /up/nl\\012z\ntrusted.overlay.opaque="y"\n\n'),
    Buffer.from('# file: /up/x\\134y\ntrusted.overlay.opaque="y"\n\n'),
    Buffer.from('# file: /up/'),
    Buffer.from('ünï'),
    Buffer.from('\ntrusted.overlay.opaque="y"\n\n'),
    Buffer.from('# file: /up/\\303\\251\ntrusted.overlay.opaque="y"\n\n'),
    Buffer.from('# file: /up/merge\ntrusted.overlay.opaque="x"\n\n'),
  ])
  assert.deepEqual(parseOpaqueDirs(out), ['/up/with space', '/up/nl\nz', '/up/x\\y', '/up/ünï', '/up/é'])
})

test('the spawned tools get exact argv, with no shell', () => {
  assert.deepEqual(mknodCommand('/r/dev/null', 'c', 1, 3, 0o666), {
    file: 'mknod',
    args: ['-m', '0666', '/r/dev/null', 'c', '1', '3'],
  })
  assert.deepEqual(setOpaqueCommand('/r/d'), {
    file: 'setfattr',
    args: ['-h', '-n', 'trusted.overlay.opaque', '-v', 'y', '/r/d'],
  })
  assert.deepEqual(findOpaqueCommand('/up').args.slice(-3), ['-m', '^trusted\\.overlay\\.opaque$', '/up'])
})

test('dev_t splits like glibc major()/minor()', () => {
  assert.deepEqual(deviceNumbers(0x0103n), { devmajor: 1, devminor: 3 })
  // glibc makedev(0x12345, 0x6789a): major's high bits sit above bit 32, minor's above bit 20
  const dev = (0x12000n << 32n) | (0x67800n << 12n) | (0x345n << 8n) | 0x9an
  assert.deepEqual(deviceNumbers(dev), { devmajor: 0x12345, devminor: 0x6789a })
  assert.deepEqual(deviceNumbers((259n << 8n) | 5n), { devmajor: 259, devminor: 5 })
})
