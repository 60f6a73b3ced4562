import assert from 'node:assert/strict'
import { chmod, lstat, mkdir, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import { runCommand } from '../../util/exec.js'
import { extractLayer, listLayer, scanDir, writeLayer } from './index.js'
import { describeTree, mountOverlay, tempDir } from './testing.js'

const OPTS = 'redirect_dir=off,index=off,metacopy=off'
const isRoot = process.getuid?.() === 0

async function makeLower(lower: string): Promise<void> {
  await writeFile(join(lower, 'keep.txt'), 'lower keep')
  await writeFile(join(lower, 'delete-me.txt'), 'lower delete')
  await writeFile(join(lower, 'modify.txt'), 'lower original')
  await mkdir(join(lower, 'replaced/old-sub'), { recursive: true })
  await writeFile(join(lower, 'replaced/old.txt'), 'hidden by opaque')
  await writeFile(join(lower, 'replaced/old-sub/deep.txt'), 'hidden too')
  await mkdir(join(lower, 'gone/inner'), { recursive: true })
  await writeFile(join(lower, 'gone/inner/x'), 'x')
  await mkdir(join(lower, 'merged-dir'))
  await writeFile(join(lower, 'merged-dir/lower-file'), 'stays visible')
  await symlink('keep.txt', join(lower, 'link-to-keep'))
}

/** A real overlay over `lower`; the changes are made through the merged view, then it is unmounted. */
async function changeThroughOverlay(t: TestContext, base: string, lower: string) {
  const upper = join(base, 'upper')
  const merged = join(base, 'merged')
  for (const d of [upper, join(base, 'work'), merged]) await mkdir(d)
  const unmount = await mountOverlay(
    t,
    merged,
    `lowerdir=${lower},upperdir=${upper},workdir=${join(base, 'work')},${OPTS}`,
  )
  try {
    await unlink(join(merged, 'delete-me.txt'))
    await rm(join(merged, 'replaced'), { recursive: true })
    await mkdir(join(merged, 'replaced'))
    await writeFile(join(merged, 'replaced/new.txt'), 'fresh')
    await mkdir(join(merged, 'replaced/old-sub'))
    await writeFile(join(merged, 'replaced/old-sub/other.txt'), 'recreated sub')
    await rm(join(merged, 'gone'), { recursive: true })
    await writeFile(join(merged, 'modify.txt'), 'modified in upper')
    await chmod(join(merged, 'modify.txt'), 0o600)
    await writeFile(join(merged, 'added.txt'), 'added')
    await writeFile(join(merged, 'merged-dir/upper-file'), 'next to a lower file')
    return { upper, view: await describeTree(merged) }
  } finally {
    await unmount()
  }
}

test('an overlay upper dir becomes a layer with OCI whiteouts that reproduces the merged view', {
  skip: !isRoot && 'needs root for mount',
}, async (t) => {
  const base = await tempDir(t)
  const lower = join(base, 'lower')
  await mkdir(lower)
  await makeLower(lower)
  const { upper, view } = await changeThroughOverlay(t, base, lower)
  assert.deepEqual(
    Object.keys(view).sort(),
    [
      'added.txt',
      'keep.txt',
      'link-to-keep',
      'merged-dir',
      'merged-dir/lower-file',
      'merged-dir/upper-file',
      'modify.txt',
      'replaced',
      'replaced/new.txt',
      'replaced/old-sub',
      'replaced/old-sub/other.txt',
    ],
    'the merged view the layer must reproduce',
  )

  const entries = await scanDir(upper, { overlayUpper: true })
  const byPath = new Map(entries.map((e) => [e.path, e]))
  for (const wh of ['.wh.delete-me.txt', '.wh.gone', 'replaced/.wh..wh..opq']) {
    assert.deepEqual(
      { type: byPath.get(wh)?.type, size: byPath.get(wh)?.size, mode: byPath.get(wh)?.mode },
      { type: 'file', size: 0, mode: 0 },
      wh,
    )
  }
  assert.equal(byPath.get('merged-dir/.wh..wh..opq'), undefined, 'a dir only added to is not opaque')
  assert.equal(entries.filter((e) => e.type === 'link').length, 0, 'shared whiteout inodes are not hardlinks')

  const layer = join(base, 'layer.tar.gz')
  await writeLayer(entries, layer, { epoch: 4_000_000_000 })
  const listed = await listLayer(layer)
  assert.ok(listed.has('replaced/.wh..wh..opq'))
  assert.ok(listed.has('.wh.gone'))

  // snapshot mode: a lower dir for overlayfs; stacked on the original lower it shows the merged view
  const snap = join(base, 'snap')
  await mkdir(snap)
  await extractLayer(layer, snap, { mode: 'snapshot', label: 'upper layer' })
  const wh = await lstat(join(snap, 'delete-me.txt'))
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout device in the snapshot')
  const attr = await runCommand({
    file: 'getfattr',
    args: ['-h', '--only-values', '-n', 'trusted.overlay.opaque', join(snap, 'replaced')],
  })
  assert.equal(attr.stdout.toString(), 'y')
  const view2 = join(base, 'view2')
  await mkdir(view2)
  const unmount = await mountOverlay(t, view2, `lowerdir=${snap}:${lower}`)
  try {
    assert.deepEqual(await describeTree(view2), view)
  } finally {
    await unmount()
  }

  // apply mode over a copy of the lower content gives the merged tree
  const applied = join(base, 'applied')
  await runCommand({ file: 'cp', args: ['-a', lower, applied] })
  await extractLayer(layer, applied, { mode: 'apply' })
  assert.deepEqual(await describeTree(applied), view)
})

test('scanDir reads opaque markers on names that getfattr has to escape', {
  skip: !isRoot && 'needs root for trusted xattrs',
}, async (t) => {
  const base = await tempDir(t)
  const names = ['with space', 'back\\slash', 'new\nline', 'ünï']
  for (const n of names) {
    await mkdir(join(base, n))
    await runCommand({ file: 'setfattr', args: ['-n', 'trusted.overlay.opaque', '-v', 'y', join(base, n)] })
  }
  await mkdir(join(base, 'not-opaque'))
  await runCommand({
    file: 'setfattr',
    args: ['-n', 'trusted.overlay.opaque', '-v', 'x', join(base, 'not-opaque')],
  })
  await symlink(join(base, 'with space'), join(base, 'link-to-opaque'))
  const entries = await scanDir(base, { overlayUpper: true })
  const markers = entries.filter((e) => e.path.endsWith('/.wh..wh..opq')).map((e) => e.path)
  assert.deepEqual(markers.sort(), names.map((n) => `${n}/.wh..wh..opq`).sort())
})
