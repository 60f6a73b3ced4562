import assert from 'node:assert/strict'
import { chmod, chown, link, mkdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { runCommand } from '../../util/exec.js'
import { sha256 } from '../digest.js'
import { listLayer, scanDir, writeLayer } from './index.js'
import type { PackEntry } from './index.js'
import { tempDir } from './testing.js'

const EPOCH = 1_700_000_000
const LONG = `${'deep/'.repeat(30)}file-with-a-long-name.txt`

/** The same tree, built in a different order (so inodes differ) and with different mtimes. */
async function makeTree(root: string, order: 'forward' | 'reverse', mtime: number): Promise<void> {
  const steps: Array<() => Promise<void>> = [
    async () => {
      await mkdir(join(root, 'a'))
      // the two names of one inode, created in either order: the sorted order alone decides which is the file
      const [first, second] = order === 'forward' ? ['a/b.txt', 'z-hard'] : ['z-hard', 'a/b.txt']
      await writeFile(join(root, first), 'hello\n')
      await link(join(root, first), join(root, second))
    },
    async () => {
      await writeFile(join(root, 'setuid'), '#!/bin/sh\n')
      await chmod(join(root, 'setuid'), 0o4755)
      await writeFile(join(root, 'owned'), 'x')
      await chown(join(root, 'owned'), 1234, 5678)
    },
    async () => {
      await symlink('a/b.txt', join(root, 'sym'))
      await symlink('/nowhere/at/all', join(root, 'dangling'))
      await writeFile(join(root, 'empty'), '')
      await writeFile(join(root, 'é-ünïcode.txt'), 'ü')
      await runCommand({ file: 'mkfifo', args: ['-m', '640', join(root, 'pipe')] })
    },
    async () => {
      await mkdir(join(root, LONG, '..'), { recursive: true })
      await writeFile(join(root, LONG), 'long')
      await mkdir(join(root, 'a-b'))
    },
  ]
  for (const step of order === 'forward' ? steps : steps.reverse()) await step()
  const all = ['a', 'a/b.txt', 'setuid', 'owned', 'empty', 'é-ünïcode.txt', 'pipe', 'a-b', LONG]
  for (const p of all) await utimes(join(root, p), mtime, mtime)
}

test('two copies of a tree made at different times give byte-identical layers', async (t) => {
  const base = await tempDir(t)
  await mkdir(join(base, 'one'))
  await mkdir(join(base, 'two'))
  await makeTree(join(base, 'one'), 'forward', EPOCH + 1000)
  await makeTree(join(base, 'two'), 'reverse', EPOCH + 99_999)
  const e1 = await scanDir(join(base, 'one'))
  const e2 = await scanDir(join(base, 'two'))
  const l1 = await writeLayer(e1, join(base, 'one.tar.gz'), { epoch: EPOCH })
  const l2 = await writeLayer(e2, join(base, 'two.tar.gz'), { epoch: EPOCH })
  assert.equal(l1.digest, l2.digest)
  assert.equal(l1.diffId, l2.diffId)
  assert.deepEqual(await readFile(join(base, 'one.tar.gz')), await readFile(join(base, 'two.tar.gz')))

  // the reported digests and sizes are those of the bytes on disk
  const gz = await readFile(join(base, 'one.tar.gz'))
  assert.equal(l1.digest, sha256(gz))
  assert.equal(l1.size, gz.length)
  assert.equal(l1.diffId, sha256(gunzipSync(gz)))
  assert.equal(l1.uncompressedSize, gunzipSync(gz).length)
  assert.deepEqual([...gz.subarray(4, 8)], [0, 0, 0, 0], 'gzip header mtime is 0')
  assert.equal(gz[3], 0, 'gzip header has no file name')

  const paths = e1.map((e) => e.path)
  assert.deepEqual(paths.slice(0, 4), ['a', 'a/b.txt', 'a-b', 'dangling'])
  const listed = await listLayer(join(base, 'one.tar.gz'))
  assert.deepEqual([...listed.keys()], paths, 'the layer keeps the sorted order')
  assert.equal(listed.get('a/b.txt')?.type, 'file')
  assert.deepEqual(
    { type: listed.get('z-hard')?.type, linkname: listed.get('z-hard')?.linkname },
    { type: 'link', linkname: 'a/b.txt' },
  )
  assert.equal(listed.get('sym')?.linkname, 'a/b.txt')
  assert.equal(listed.get('dangling')?.linkname, '/nowhere/at/all')
  assert.equal(listed.get('setuid')?.mode, 0o4755)
  assert.deepEqual([listed.get('owned')?.uid, listed.get('owned')?.gid], [1234, 5678])
  assert.equal(listed.get('pipe')?.type, 'fifo')
  assert.equal(listed.get(LONG)?.sha256, sha256('long').slice(7))
  assert.equal(listed.get('é-ünïcode.txt')?.size, 2)
  for (const e of listed.values()) assert.ok(e.mtime <= EPOCH, `${e.path} mtime clamped`)
})

test('mtimes older than the epoch are kept, newer ones clamped', async (t) => {
  const base = await tempDir(t)
  const entry = (path: string, mtime: number): PackEntry => ({
    path,
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: 1,
    mtime,
    data: Buffer.from('x'),
  })
  const file = join(base, 'l.tar.gz')
  await writeLayer([entry('old', EPOCH - 500), entry('new', EPOCH + 500), entry('pre-1970', -5)], file, {
    epoch: EPOCH,
  })
  const listed = await listLayer(file)
  assert.equal(listed.get('old')?.mtime, EPOCH - 500)
  assert.equal(listed.get('new')?.mtime, EPOCH)
  assert.equal(listed.get('pre-1970')?.mtime, 0)
})

test('uncompressed layers, large ids and mode-0 whiteouts survive the ustar encoding', async (t) => {
  const base = await tempDir(t)
  const file = join(base, 'l.tar')
  const entries: PackEntry[] = [
    {
      path: 'big-ids',
      type: 'file',
      mode: 0o600,
      uid: 4_000_000_000,
      gid: 3_000_000,
      size: 0,
      mtime: 1,
      data: Buffer.alloc(0),
    },
    { path: '.wh.gone', type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: 1, data: Buffer.alloc(0) },
  ]
  const written = await writeLayer(entries, file, { epoch: EPOCH, compress: false })
  assert.equal(written.digest, written.diffId)
  assert.equal(written.size, (await stat(file)).size)
  const listed = await listLayer(file)
  assert.deepEqual([listed.get('big-ids')?.uid, listed.get('big-ids')?.gid], [4_000_000_000, 3_000_000])
  assert.equal(listed.get('.wh.gone')?.mode, 0)
})

test('a source file that changed size since the scan fails the write and leaves no file', async (t) => {
  const base = await tempDir(t)
  await writeFile(join(base, 'f'), 'abc')
  const entries = await scanDir(base)
  await writeFile(join(base, 'f'), 'abcdef')
  const dest = join(base, 'out.tar.gz')
  await assert.rejects(writeLayer(entries, dest, { epoch: EPOCH }), { code: 'LAYER_SOURCE_CHANGED' })
  await assert.rejects(stat(dest), { code: 'ENOENT' })
})
