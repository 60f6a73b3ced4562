// A corrupt or missing blob is never a dead end: a build that would reuse it rebuilds it, a deploy that
// would unpack it is refused naming the blob and the image with a hint that works, and a failed create
// leaves nothing that breaks the next command.
import assert from 'node:assert/strict'
import { open, readFile, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fetchWithRetry } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

const spec = `project: blobs
${httpdImages()}services:
  web:
    image: web
    replicas: 1
    port: 8080
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
    # reached at its own loopback port, so the test can ask the instance itself what it serves
    network: host
`

interface Image {
  version: number
  digest: string
}
interface Status {
  instances: Array<{ id: string; health: string; port?: number }>
}

/** Flips one byte in the middle of a file, as a bad disk would. */
async function flipByte(path: string): Promise<void> {
  const fh = await open(path, 'r+')
  try {
    const { size } = await fh.stat()
    const at = Math.floor(size / 2)
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, at)
    b[0] = (b[0] as number) ^ 0xff
    await fh.write(b, 0, 1, at)
  } finally {
    await fh.close()
  }
}

describe('corrupt and missing blobs', () => {
  let dir: string
  const blobPath = (digest: string) => join(dir, '.grail', 'oci', 'blobs', 'sha256', digest.slice(7))
  /** The blob of the image's top layer (the site copy), which no snapshot holds until a deploy. */
  async function topLayer(): Promise<string> {
    const [image] = parseJson<Image[]>(await grail(['--json', 'images'], { cwd: dir }))
    const manifest = JSON.parse(await readFile(blobPath((image as Image).digest), 'utf8')) as {
      layers: Array<{ digest: string }>
    }
    return (manifest.layers.at(-1) as { digest: string }).digest
  }
  async function serves(text: string): Promise<void> {
    const status = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
    assert.equal(status.instances.length, 1, JSON.stringify(status))
    const port = status.instances[0]?.port
    assert.ok(port, JSON.stringify(status))
    assert.equal(await fetchWithRetry(`http://127.0.0.1:${port}/index.html`, 10_000), text)
  }

  before(async () => {
    dir = await busyboxProject({ 'grail.yaml': spec, 'site/index.html': 'one\n' })
  })
  after(async () => {
    await tearDown(dir)
  })

  test('a flipped byte in a layer blob: `up` rebuilds it and deploys', async () => {
    const built = await grail(['build'], { cwd: dir })
    assert.equal(built.code, 0, built.stderr + built.stdout)
    await flipByte(blobPath(await topLayer()))
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
    assert.match(up.stdout, /restored web v1/)
    await serves('one\n')
    const images = parseJson<Image[]>(await grail(['--json', 'images'], { cwd: dir }))
    assert.deepEqual(
      images.map((i) => i.version),
      [1],
      'the same content is the same version',
    )
  })

  test('a flipped byte, then `apply` (no build): refused naming the blob and image; status works; the hint recovers', async () => {
    await writeSite('two\n')
    assert.equal((await grail(['build'], { cwd: dir })).code, 0)
    const layer = await topLayer()
    await flipByte(blobPath(layer))
    const apply = await grail(['apply'], { cwd: dir })
    assert.equal(apply.code, 1, apply.stderr + apply.stdout)
    assert.ok(apply.stderr.includes(layer.slice(7)), `names the blob:\n${apply.stderr}`)
    assert.match(apply.stderr, /web v2/)
    assert.match(apply.stderr, /grail build/)
    assert.doesNotMatch(apply.stderr, /internal error|invalid distance|\n\s+at /)
    // nothing left behind breaks the next commands; v1 still serves
    const status = await grail(['status'], { cwd: dir })
    assert.equal(status.code, 0, status.stderr + status.stdout)
    await serves('one\n')
    // the hint: `grail build` restores the blob, then the apply works
    const rebuilt = await grail(['build'], { cwd: dir })
    assert.equal(rebuilt.code, 0, rebuilt.stderr + rebuilt.stdout)
    const again = await grail(['apply'], { cwd: dir })
    assert.equal(again.code, 0, again.stderr + again.stdout)
    await serves('two\n')
  })

  test('a deleted blob: `build` rebuilds it instead of saying unchanged, and `up` works', async () => {
    await writeSite('three\n')
    assert.equal((await grail(['build'], { cwd: dir })).code, 0)
    await unlink(blobPath(await topLayer()))
    const built = await grail(['build'], { cwd: dir })
    assert.equal(built.code, 0, built.stderr + built.stdout)
    assert.match(built.stdout, /restored web v3/)
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
    await serves('three\n')
  })

  async function writeSite(text: string): Promise<void> {
    await rm(join(dir, 'site', 'index.html'))
    const fh = await open(join(dir, 'site', 'index.html'), 'w')
    await fh.writeFile(text)
    await fh.close()
  }
})
