// Acceptance (issue 10, point 5): a gc whose unlink fails for real (an immutable blob, chattr +i) reports
// the blob and the reason, does not count its bytes as freed, and exits 1; the next gc, once the cause is
// gone, finishes the job.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { busyboxProject, grail, parseJson, removeDir } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

interface Gc {
  images: { collected: Array<{ version: number }> }
  blobs: { deleted: number; bytes: number; left: number }
  failed: Array<{ path: string; code: string; message: string }>
}

/** chattr +i where the filesystem has it (ext2/3/4, xfs, btrfs); the test is skipped elsewhere. */
function chattr(flag: '+i' | '-i', path: string): boolean {
  try {
    execFileSync('chattr', [flag, path], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

describe('grail gc when a blob cannot be deleted', () => {
  let dir: string
  let pinned: string | undefined
  const blobPath = (digest: string) =>
    join(dir, '.grail', 'oci', 'blobs', 'sha256', digest.slice('sha256:'.length))

  before(async () => {
    dir = await busyboxProject({
      'grail.yaml': `project: stuck\n${httpdImages()}policies:\n  gc: { keepVersions: 1 }\n`,
      'site/index.html': 'v1\n',
    })
    for (const v of [1, 2]) {
      await writeFile(join(dir, 'site/index.html'), `v${v}\n`)
      const res = await grail(['build'], { cwd: dir })
      assert.equal(res.code, 0, res.stderr + res.stdout)
    }
  })
  after(async () => {
    if (pinned) chattr('-i', pinned)
    await removeDir(dir)
  })

  test('the failure is reported (human and --json), its bytes are not counted, exit 1; fixed, the next gc deletes it', async (t) => {
    const images = parseJson<Array<{ version: number; digest: string }>>(
      await grail(['--json', 'images'], { cwd: dir }),
    )
    const v1 = images.find((i) => i.version === 1)?.digest as string
    const manifest = JSON.parse(await readFile(blobPath(v1), 'utf8')) as { layers: Array<{ digest: string }> }
    // the copy layer: v1's own (the base layer is shared with v2)
    const layer = blobPath(manifest.layers.at(-1)?.digest as string)
    const layerSize = (await stat(layer)).size
    const dry = parseJson<Gc>(await grail(['--json', 'gc', '--dry-run', '--grace', '0s'], { cwd: dir }))
    assert.deepEqual(
      dry.images.collected.map((i) => i.version),
      [1],
    )
    if (!chattr('+i', layer)) {
      t.skip('this filesystem has no immutable attribute')
      return
    }
    pinned = layer

    const res = await grail(['--json', 'gc', '--grace', '0s'], { cwd: dir })
    assert.equal(res.code, 1, res.stderr + res.stdout)
    const report = JSON.parse(res.stdout) as Gc
    assert.deepEqual(
      report.failed.map((f) => [f.path, f.code]),
      [[layer, 'EPERM']],
    )
    assert.equal(report.blobs.deleted, dry.blobs.deleted - 1)
    assert.equal(report.blobs.bytes, dry.blobs.bytes - layerSize, 'the blob that stayed is not counted')
    const { error } = JSON.parse(res.stderr) as { error: { code: string; message: string; hint: string } }
    assert.equal(error.code, 'GC_INCOMPLETE')
    assert.match(
      error.message,
      new RegExp(`could not delete 1 file\\(s\\) or dir\\(s\\), e\\.g\\. ${layer} \\(EPERM\\)`),
    )
    await stat(layer)

    const human = await grail(['gc', '--grace', '0s'], { cwd: dir })
    assert.equal(human.code, 1, human.stderr + human.stdout)
    assert.match(human.stdout, /0 blob\(s\) \(0 B\) and 0 snapshot\(s\) \(0 B\) freed/)
    assert.match(human.stderr, /error: gc could not delete 1 file\(s\) or dir\(s\)/)
    assert.match(human.stderr, new RegExp(`${layer}: EPERM`))
    assert.match(human.stderr, /hint: .*lsattr.*run `grail gc` again/)
    assert.doesNotMatch(human.stderr, /\n\s+at |internal error/)

    chattr('-i', layer)
    pinned = undefined
    const fixed = parseJson<Gc>(await grail(['--json', 'gc', '--grace', '0s'], { cwd: dir }))
    assert.deepEqual(fixed.failed, [])
    assert.equal(fixed.blobs.deleted, 1)
    assert.equal(fixed.blobs.bytes, layerSize)
    await assert.rejects(stat(layer), { code: 'ENOENT' })
  })
})
