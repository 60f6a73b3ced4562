// A rootfs base tarball that tries to escape is refused by `grail build` with a clear error, and nothing
// lands outside the build's own directories.
import assert from 'node:assert/strict'
import { createWriteStream, existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { after, describe, test } from 'node:test'
import { pack } from 'tar-stream'
import { grail, removeDir, tempProject } from '../helpers/project.js'

type Header = Parameters<ReturnType<typeof pack>['entry']>[0]

async function writeTar(path: string, entries: Array<{ header: Header; body?: string }>): Promise<void> {
  const p = pack()
  const done = pipeline(p, createWriteStream(path))
  for (const e of entries) p.entry(e.header, e.body ?? '')
  p.finalize()
  await done
}

const spec = 'project: demo\nimages:\n  app:\n    base: { rootfs: ./base.tar }\n'

const cases: Array<{ name: string; entries: Array<{ header: Header; body?: string }>; entry: string }> = [
  { name: '../ path', entries: [{ header: { name: '../evil', type: 'file' }, body: 'x' }], entry: '../evil' },
  {
    name: 'absolute path',
    entries: [{ header: { name: '/evil', type: 'file' }, body: 'x' }],
    entry: '/evil',
  },
  {
    name: 'write through a symlink',
    entries: [
      { header: { name: 'link', type: 'symlink', linkname: '/tmp' } },
      { header: { name: 'link/evil', type: 'file' }, body: 'x' },
    ],
    entry: 'link/evil',
  },
  {
    name: 'hardlink out of the root',
    entries: [{ header: { name: 'h', type: 'link', linkname: '../../../../etc/passwd' } }],
    entry: 'h',
  },
  {
    name: 'device node',
    entries: [{ header: { name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 } }],
    entry: 'sda',
  },
]

describe('grail build refuses unsafe base tarballs', () => {
  const dirs: string[] = []
  after(async () => {
    for (const d of dirs) await removeDir(d)
  })
  for (const c of cases) {
    test(c.name, async () => {
      const dir = await tempProject({ 'grail.yaml': spec })
      dirs.push(dir)
      await writeTar(join(dir, 'base.tar'), c.entries)
      const res = await grail(['build'], { cwd: dir })
      assert.equal(res.code, 1, res.stderr)
      assert.ok(res.stderr.includes(join(dir, 'base.tar')), `names the archive:\n${res.stderr}`)
      assert.ok(res.stderr.includes(c.entry), `names the entry ${c.entry}:\n${res.stderr}`)
      assert.doesNotMatch(res.stderr, /internal error|\n\s+at /)
      assert.equal(existsSync(join(dir, '.grail', 'evil')), false)
      assert.equal(existsSync('/tmp/evil'), false)
      // the failed extraction's work dir is gone
      assert.deepEqual(await readdir(join(dir, '.grail', 'tmp')), [])
    })
  }
})
