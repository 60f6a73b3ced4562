import assert from 'node:assert/strict'
import { appendFile, chown, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { verifySnapshotDir } from '../../container/snapshot-verify.js'
import { extractLayer, listLayer } from '../../oci/tar/index.js'
import { craftTar, tempDir } from '../../oci/tar/testing.js'
import { shiftLeftovers } from './userns.js'

const isRoot = process.getuid?.() === 0
const BASE = 1 << 20

test('a shifted copy verifies clean with idShift, parents the layer leaves out included, and a change shows', {
  skip: !isRoot && 'needs root',
}, async (t) => {
  const tmp = await tempDir(t, 'grail-shifted-')
  // no entries for srv/ and etc/: the extractor makes them, shiftLeftovers hands them to the range
  const tar = await craftTar([
    { name: 'srv/www/', type: 'directory', mode: 0o750, uid: 33, gid: 33 },
    { name: 'srv/www/index.html', type: 'file', mode: 0o644, content: 'genuine\n' },
    { name: 'etc/.wh.shadow', type: 'file', mode: 0, content: '' },
  ])
  await writeFile(join(tmp, 'layer.tar'), tar)
  const dir = join(tmp, 'copy')
  await mkdir(dir)
  await chown(dir, BASE, BASE)
  await extractLayer(Readable.from([tar]), dir, {
    mode: 'snapshot',
    label: 'test layer',
    allowDevices: false,
    idOffset: BASE,
  })
  await shiftLeftovers(dir, BASE)
  const entries = [...(await listLayer(join(tmp, 'layer.tar'))).values()].map(
    ({ mtime: _m, devmajor: _a, devminor: _b, ...e }) => e,
  )
  assert.deepEqual(await verifySnapshotDir(dir, entries, { idShift: BASE }), [])
  await appendFile(join(dir, 'srv/www/index.html'), 'tampered\n')
  assert.deepEqual(await verifySnapshotDir(dir, entries, { idShift: BASE }), [
    { path: 'srv/www/index.html', what: ['content'] },
  ])
})
