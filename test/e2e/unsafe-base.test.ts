// A foreign base (a rootfs tarball or a local OCI layout) that tries to escape, to write through a
// symlink or to bring device nodes is refused by `grail build`, naming the archive (or layer) and the
// entry, and nothing lands outside the build's own directories.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createWriteStream, existsSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
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
  {
    // once dropped without a word
    name: 'device node under dev/',
    entries: [
      { header: { name: 'dev/', type: 'directory' } },
      { header: { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 } },
    ],
    entry: 'dev/null',
  },
  { name: 'fifo', entries: [{ header: { name: 'pipe', type: 'fifo' } }], entry: 'pipe' },
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

type Entries = Array<{ header: Header; body?: string }>

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** An OCI image layout at `dir` with one image (tag `v1`) of these uncompressed layers, bottom first. */
async function writeLayout(dir: string, layers: Entries[]): Promise<void> {
  const blobs = join(dir, 'blobs', 'sha256')
  await mkdir(blobs, { recursive: true })
  const put = async (b: Buffer) => {
    await writeFile(join(blobs, sha(b).slice(7)), b)
    return { digest: sha(b), size: b.length }
  }
  const descs = []
  for (const [i, entries] of layers.entries()) {
    const path = join(dir, `layer-${i}.tar`)
    await writeTar(path, entries)
    const data = await readFile(path)
    descs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...(await put(data)) })
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: descs.map((d) => d.digest) },
    }),
  )
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(config)) },
      layers: descs,
    }),
  )
  const m = await put(manifest)
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...m,
          annotations: { 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    }),
  )
}

const ociSpec = 'project: demo\nimages:\n  app:\n    base: { oci: ./layout, ref: v1 }\n'

const ociCases: Array<{ name: string; layers: Entries[]; entry: string; layer: number }> = [
  {
    name: 'a layer that writes through its own symlink',
    layers: [
      [
        { header: { name: 'etc/', type: 'directory' } },
        { header: { name: 'www', type: 'symlink', linkname: '/etc' } },
        { header: { name: 'www/index.html', type: 'file' }, body: 'x' },
      ],
    ],
    entry: 'www/index.html',
    layer: 1,
  },
  {
    name: 'a layer that writes through a symlink of the layer below',
    layers: [
      [{ header: { name: 'www', type: 'symlink', linkname: '/etc' } }],
      [{ header: { name: 'www/passwd', type: 'file' }, body: 'x' }],
    ],
    entry: 'www/passwd',
    layer: 2,
  },
  {
    name: 'a layer with a device node',
    layers: [[{ header: { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 } }]],
    entry: 'dev/sda',
    layer: 1,
  },
  {
    name: 'a layer with a path that leaves the root',
    layers: [[{ header: { name: '../../evil', type: 'file' }, body: 'x' }]],
    entry: '../../evil',
    layer: 1,
  },
]

describe('grail build refuses unsafe local OCI layouts at import', () => {
  const dirs: string[] = []
  after(async () => {
    for (const d of dirs) await removeDir(d)
  })
  for (const c of ociCases) {
    test(c.name, async () => {
      const dir = await tempProject({ 'grail.yaml': ociSpec })
      dirs.push(dir)
      await writeLayout(join(dir, 'layout'), c.layers)
      const res = await grail(['build'], { cwd: dir })
      assert.equal(res.code, 1, res.stderr + res.stdout)
      assert.ok(res.stderr.includes(join(dir, 'layout')), `names the layout:\n${res.stderr}`)
      assert.ok(res.stderr.includes(`layer ${c.layer}`), `names layer ${c.layer}:\n${res.stderr}`)
      assert.ok(res.stderr.includes(`"${c.entry}"`), `names the entry ${c.entry}:\n${res.stderr}`)
      assert.doesNotMatch(res.stderr, /internal error|\n\s+at /)
      const images = await grail(['--json', 'images'], { cwd: dir })
      assert.deepEqual(JSON.parse(images.stdout), [], 'no image was recorded')
    })
  }

  test('a safe layout still builds (symlinks, whiteouts, hardlinks in one layer)', async () => {
    const dir = await tempProject({ 'grail.yaml': ociSpec })
    dirs.push(dir)
    await writeLayout(join(dir, 'layout'), [
      [
        { header: { name: 'etc/', type: 'directory' } },
        { header: { name: 'etc/a', type: 'file' }, body: 'a' },
        { header: { name: 'etc/b', type: 'link', linkname: 'etc/a' } },
        { header: { name: 'www', type: 'symlink', linkname: '/etc' } },
      ],
      [
        { header: { name: 'www', type: 'directory' } },
        { header: { name: 'www/index.html', type: 'file' }, body: 'ok' },
        { header: { name: 'etc/.wh.a', type: 'file' } },
      ],
    ])
    const res = await grail(['build'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
  })
})
