import assert from 'node:assert/strict'
import { createReadStream } from 'node:fs'
import { chmod, chown, link, lstat, mkdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { runCommand } from '../../util/exec.js'
import { extractLayer, readLayer, scanDir, writeLayer } from './index.js'
import type { PackEntry } from './index.js'
import { craftTar, describeTree, tempDir } from './testing.js'

const FUTURE = 4_000_000_000 // an epoch after every mtime, so none is clamped and all must come back

async function makeRichTree(root: string): Promise<void> {
  await mkdir(join(root, 'etc/app'), { recursive: true })
  await writeFile(join(root, 'etc/app/conf'), 'key=value\n')
  await chmod(join(root, 'etc/app/conf'), 0o640)
  await chown(join(root, 'etc/app/conf'), 0, 42)
  await mkdir(join(root, 'home/user'), { recursive: true })
  await writeFile(join(root, 'home/user/.profile'), 'export A=1\n')
  await chown(join(root, 'home/user/.profile'), 1000, 1000)
  await chown(join(root, 'home/user'), 1000, 1000)
  await mkdir(join(root, 'usr/bin'), { recursive: true })
  await writeFile(join(root, 'usr/bin/tool'), Buffer.alloc(300_000, 7))
  await chmod(join(root, 'usr/bin/tool'), 0o4755)
  await link(join(root, 'usr/bin/tool'), join(root, 'usr/bin/tool-alias'))
  await symlink('tool', join(root, 'usr/bin/tool-link'))
  await symlink('/etc/app/conf', join(root, 'abs-link'))
  await symlink('../../nowhere', join(root, 'usr/dangling'))
  await mkdir(join(root, 'empty-dir'))
  await chmod(join(root, 'empty-dir'), 0o1777)
  await runCommand({ file: 'mkfifo', args: ['-m', '600', join(root, 'pipe')] })
  // a read-only directory with children: its mode may only be applied after they are written
  await mkdir(join(root, 'ro'))
  await writeFile(join(root, 'ro/inside'), 'in a read-only dir')
  await chmod(join(root, 'ro'), 0o555)
  let t = 1_600_000_000
  for (const p of [
    'etc/app/conf',
    'etc/app',
    'etc',
    'home/user/.profile',
    'home/user',
    'ro/inside',
    'ro',
    'pipe',
  ]) {
    await utimes(join(root, p), t, t)
    t += 3600
  }
}

test('writeLayer then extractLayer(apply) reproduces the tree', async (t) => {
  const base = await tempDir(t)
  const src = join(base, 'src')
  const dest = join(base, 'dest')
  await mkdir(src)
  await mkdir(dest)
  await makeRichTree(src)
  const layer = join(base, 'layer.tar.gz')
  await writeLayer(await scanDir(src), layer, { epoch: FUTURE })
  const result = await extractLayer(layer, dest, { mode: 'apply' })
  assert.equal(result.entries, Object.keys(await describeTree(src)).length)
  assert.deepEqual(await describeTree(dest, { mtime: true }), await describeTree(src, { mtime: true }))
  const a = await lstat(join(dest, 'usr/bin/tool'))
  const b = await lstat(join(dest, 'usr/bin/tool-alias'))
  assert.equal(a.ino, b.ino, 'hardlinks share an inode')
  assert.equal(a.nlink, 2)
})

test('layers interoperate with GNU tar in both directions', async (t) => {
  const base = await tempDir(t)
  const src = join(base, 'src')
  const long = `${'nested-directory-name/'.repeat(6)}ünïcode-file-with-a-name-longer-than-ustar-allows.txt`
  await mkdir(join(src, long, '..'), { recursive: true })
  await writeFile(join(src, long), 'long')
  await makeRichTree(src)
  const expected = await describeTree(src, { mtime: true })

  const gnu = join(base, 'gnu.tar.gz')
  await runCommand({ file: 'tar', args: ['-C', src, '--numeric-owner', '-czf', gnu, '.'] })
  const fromGnu = join(base, 'from-gnu')
  await mkdir(fromGnu)
  await extractLayer(gnu, fromGnu, { mode: 'apply' })
  assert.deepEqual(await describeTree(fromGnu, { mtime: true }), expected)

  const ours = join(base, 'ours.tar.gz')
  await writeLayer(await scanDir(src), ours, { epoch: FUTURE })
  const byGnu = join(base, 'by-gnu')
  await mkdir(byGnu)
  await runCommand({ file: 'tar', args: ['-C', byGnu, '--numeric-owner', '-xzpf', ours] })
  assert.deepEqual(await describeTree(byGnu, { mtime: true }), expected)
})

test('extracting over an existing tree replaces what is in the way without writing through links', async (t) => {
  const base = await tempDir(t)
  const root = join(base, 'root')
  const outside = join(base, 'outside')
  await mkdir(outside)
  await writeFile(join(outside, 'secret'), 'keep me')
  await mkdir(join(root, 'was-dir/sub'), { recursive: true })
  await writeFile(join(root, 'was-dir/sub/f'), 'x')
  await writeFile(join(root, 'was-file'), 'x')
  await symlink(join(outside, 'secret'), join(root, 'file-over-link'))
  await symlink(outside, join(root, 'dir-over-link'))
  const tarball = await craftTar([
    { name: 'was-dir', type: 'file', content: 'now a file' },
    { name: 'was-file/', type: 'directory', mode: 0o750 },
    { name: 'file-over-link', type: 'file', content: 'replaced the link' },
    { name: 'dir-over-link/', type: 'directory', mode: 0o755 },
    { name: 'dir-over-link/new', type: 'file', content: 'inside root' },
  ])
  await writeFile(join(base, 'l.tar'), tarball)
  await extractLayer(join(base, 'l.tar'), root, { mode: 'apply' })
  assert.equal(await readFile(join(root, 'was-dir'), 'utf8'), 'now a file')
  assert.ok((await lstat(join(root, 'was-file'))).isDirectory())
  assert.equal(await readFile(join(root, 'file-over-link'), 'utf8'), 'replaced the link')
  assert.ok((await lstat(join(root, 'dir-over-link'))).isDirectory())
  assert.equal(await readFile(join(root, 'dir-over-link/new'), 'utf8'), 'inside root')
  assert.deepEqual(Object.keys(await describeTree(outside)), ['secret'])
  assert.equal(await readFile(join(outside, 'secret'), 'utf8'), 'keep me')
})

test('readLayer drains content the handler ignores and reads plain tar and streams', async (t) => {
  const base = await tempDir(t)
  const big = Buffer.alloc(8 * 1024 * 1024, 1)
  const entries: PackEntry[] = [
    { path: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, size: big.length, mtime: 0, data: big },
    {
      path: 'small',
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: 5,
      mtime: 0,
      data: Buffer.from('hello'),
    },
    { path: 'z', type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 },
  ]
  for (const compress of [true, false]) {
    const file = join(base, `l-${compress}`)
    await writeLayer(entries, file, { epoch: 1, compress })
    const seen: string[] = []
    await readLayer(createReadStream(file), async (entry, content) => {
      seen.push(entry.path)
      if (entry.path === 'small') {
        let text = ''
        for await (const c of content) text += String(c)
        assert.equal(text, 'hello')
      }
    })
    assert.deepEqual(seen, ['big', 'small', 'z'])
  }
})

test('a corrupt archive is a BAD_TAR naming it, and a failing handler stops the read', async (t) => {
  const base = await tempDir(t)
  const file = join(base, 'broken.tar.gz')
  const good = join(base, 'good.tar.gz')
  const data = Buffer.from('x')
  const e: PackEntry = { path: 'a', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0, data }
  await writeLayer([e, { ...e, path: 'b' }], good, { epoch: 1 })
  await writeFile(file, (await readFile(good)).subarray(0, 40))
  await assert.rejects(
    readLayer(file, async () => {}),
    (err: Error & { code?: string }) => err.code === 'BAD_TAR' && err.message.includes(file),
  )
  const seen: string[] = []
  await assert.rejects(
    readLayer(good, async (entry) => {
      seen.push(entry.path)
      throw new Error('handler failed')
    }),
    /handler failed/,
  )
  assert.deepEqual(seen, ['a'])
})
