import assert from 'node:assert/strict'
import { appendFile, chmod, chown, mkdir, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import type { FileEntry } from '../oci/file-manifest.js'
import { extractLayer, listLayer } from '../oci/tar/index.js'
import { craftTar, tempDir } from '../oci/tar/testing.js'
import { verifySnapshotDir } from './snapshot-verify.js'

const isRoot = process.getuid?.() === 0

/** A layer with files, a hardlink, a symlink, a whiteout and an opaque dir, unpacked as a snapshot. */
async function snapshot(t: TestContext): Promise<{ dir: string; entries: FileEntry[] }> {
  const base = await tempDir(t, 'grail-snapverify-')
  const tar = await craftTar([
    { name: 'srv/', type: 'directory', mode: 0o755 },
    { name: 'srv/www/', type: 'directory', mode: 0o750, uid: 33, gid: 33 },
    { name: 'srv/www/index.html', type: 'file', mode: 0o644, content: 'genuine\n' },
    { name: 'srv/www/same.html', type: 'link', linkname: 'srv/www/index.html' },
    { name: 'srv/current', type: 'symlink', linkname: 'www' },
    { name: 'etc/.wh.shadow', type: 'file', mode: 0, content: '' },
    { name: 'var/.wh..wh..opq', type: 'file', mode: 0, content: '' },
  ])
  const path = join(base, 'layer.tar')
  await writeFile(path, tar)
  const dir = join(base, 'snap')
  await mkdir(dir)
  await extractLayer(Readable.from([tar]), dir, { mode: 'snapshot', label: 'test layer' })
  const entries = [...(await listLayer(path)).values()].map(
    ({ mtime: _m, devmajor: _a, devminor: _b, ...e }) => e,
  )
  return { dir, entries }
}

test('an untouched snapshot verifies clean', { skip: !isRoot && 'needs root' }, async (t) => {
  const { dir, entries } = await snapshot(t)
  assert.deepEqual(await verifySnapshotDir(dir, entries), [])
})

test('every kind of tampering is named by path', { skip: !isRoot && 'needs root' }, async (t) => {
  const { dir, entries } = await snapshot(t)
  await appendFile(join(dir, 'srv/www/index.html'), 'tampered\n') // the hardlink shares it
  await chmod(join(dir, 'srv/www'), 0o777)
  await chown(join(dir, 'srv'), 1000, 1000)
  await writeFile(join(dir, 'srv/www/extra.js'), 'added')
  await unlink(join(dir, 'srv/current'))
  await symlink('/etc', join(dir, 'srv/current'))
  await rm(join(dir, 'etc/shadow')) // the whiteout
  assert.deepEqual(await verifySnapshotDir(dir, entries), [
    { path: 'etc/shadow', what: ['deleted'] },
    { path: 'srv', what: ['owner'] },
    { path: 'srv/current', what: ['link'] },
    { path: 'srv/www', what: ['mode'] },
    { path: 'srv/www/extra.js', what: ['added'] },
    { path: 'srv/www/index.html', what: ['content'] },
  ])
})

test('a file of the same size but other bytes is caught by its hash', {
  skip: !isRoot && 'needs root',
}, async (t) => {
  const { dir, entries } = await snapshot(t)
  await writeFile(join(dir, 'srv/www/index.html'), 'GENUINE\n')
  assert.deepEqual(await verifySnapshotDir(dir, entries), [{ path: 'srv/www/index.html', what: ['content'] }])
})

test('a copy with shifted owners verifies with idShift', { skip: !isRoot && 'needs root' }, async (t) => {
  const { dir, entries } = await snapshot(t)
  const shifted = await verifySnapshotDir(dir, entries, { idShift: 100000 })
  assert.ok(shifted.length > 0 && shifted.every((d) => d.what.includes('owner')), JSON.stringify(shifted))
  const back = await verifySnapshotDir(
    dir,
    entries.map((e) => ({ ...e, uid: e.uid - 7, gid: e.gid - 7 })),
    {
      idShift: 7,
    },
  )
  assert.deepEqual(back, [])
})
