// The golden image of examples/hello (Debian essential + busybox, built with mmdebstrap): reproducible
// across directories, verified, and accepted by real clients: skopeo, umoci, and a real dockerd.
import assert from 'node:assert/strict'
import { cp, mkdtemp, readFile, readlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { runCommand } from '../../src/util/exec.js'
import type { Dockerd } from '../helpers/dockerd.js'
import { startDockerd } from '../helpers/dockerd.js'
import { fetchWithRetry, freePort } from '../helpers/net.js'
import { REPO, grail, parseJson, removeDir } from '../helpers/project.js'

interface BuildJson {
  images: Array<{ name: string; version: number; digest: string; unchanged: boolean }>
  verify: Array<{ reproducible: boolean; files: unknown[] }>
}

async function copyHello(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'grail-hello-'))
  await cp(join(REPO, 'examples/hello'), dir, {
    recursive: true,
    filter: (src) => !src.includes('.grail') && !src.endsWith('grail.lock'),
  })
  return dir
}

describe('examples/hello golden image', () => {
  const dirs: string[] = []
  let a: string
  let built: BuildJson
  before(async () => {
    a = await copyHello()
    dirs.push(a)
    built = parseJson<BuildJson>(await grail(['build', '--json'], { cwd: a }))
  })
  after(async () => {
    for (const d of dirs) await removeDir(d)
  })

  test('two clean checkouts on two state dirs, with other file times, umask, environment, build time and catalog numbers, give the same digest and byte-identical grail.lock files', async () => {
    const b = await copyHello()
    dirs.push(b)
    const env = {
      LANG: 'fr_FR.UTF-8',
      TZ: 'Pacific/Auckland',
      TMPDIR: '/var/tmp',
      PATH: `${join(REPO, 'node_modules/.bin')}:${process.env.PATH}`,
    }
    // this machine built another page first, so its catalog numbers the same image v2, not v1
    const page = await readFile(join(b, 'site/index.html'), 'utf8')
    await writeFile(join(b, 'site/index.html'), `${page}<!-- an older page -->\n`)
    assert.equal((await grail(['build'], { cwd: b, env })).code, 0)
    await writeFile(join(b, 'site/index.html'), page)
    const later = new Date(Date.now() + 7_200_000)
    for (const f of ['site/index.html', 'site/healthz', 'grail.yaml']) await utimes(join(b, f), later, later)
    const again = parseJson<BuildJson>(await grail(['build', '--json'], { cwd: b, env, umask: '077' }))
    assert.equal(again.images[0]?.digest, built.images[0]?.digest)
    assert.deepEqual([built.images[0]?.version, again.images[0]?.version], [1, 2])
    assert.equal(await readFile(join(b, 'grail.lock'), 'utf8'), await readFile(join(a, 'grail.lock'), 'utf8'))
  })

  test('grail build --verify passes', async () => {
    const res = await grail(['build', '--verify'], { cwd: a })
    assert.equal(res.code, 0, res.stderr)
    assert.match(res.stdout, /hello v1 unchanged/)
    assert.match(res.stdout, /verified hello/)
  })

  test('grail images lists the version with its packages', async () => {
    const res = await grail(['--json', 'images'], { cwd: a })
    const images =
      parseJson<
        Array<{
          name: string
          version: number
          digest: string
          packages: Array<{ name: string; version: string }>
        }>
      >(res)
    assert.equal(images[0]?.name, 'hello')
    assert.equal(images[0]?.digest, built.images[0]?.digest)
    assert.ok(
      images[0]?.packages.some((p) => p.name === 'busybox'),
      'busybox is recorded with its version',
    )
  })

  test('skopeo inspect reads the image layout', async () => {
    const res = await runCommand({
      file: 'skopeo',
      args: ['inspect', `oci:${join(a, '.grail/oci')}:hello:latest`],
    })
    const info = JSON.parse(res.stdout.toString()) as { Digest: string; Env: string[]; Created: string }
    assert.equal(info.Digest, built.images[0]?.digest)
    assert.ok(info.Env.includes('PORT=8080'))
    assert.equal(info.Created, '1970-01-01T00:00:01Z')
  })

  test('umoci unpack gives a root filesystem with the site and the busybox applets', async () => {
    const out = await mkdtemp(join(tmpdir(), 'grail-umoci-'))
    dirs.push(out)
    await runCommand({
      file: 'umoci',
      args: ['unpack', '--image', `${join(a, '.grail/oci')}:hello:v1`, join(out, 'bundle')],
    })
    const rootfs = join(out, 'bundle', 'rootfs')
    assert.equal(
      await readFile(join(rootfs, 'srv/www/index.html'), 'utf8'),
      await readFile(join(REPO, 'examples/hello/site/index.html'), 'utf8'),
    )
    assert.equal(await readlink(join(rootfs, 'usr/local/bin/wget')), '/usr/bin/busybox')
  })

  describe('in a real dockerd', () => {
    let d: Dockerd
    before(async () => {
      d = await startDockerd({ name: 'hello' })
    })
    after(async () => {
      await d?.stop()
    })

    test('the image loads and docker run serves the page', async () => {
      await runCommand({
        file: 'skopeo',
        args: [
          'copy',
          '--dest-daemon-host',
          d.host,
          `oci:${join(a, '.grail/oci')}:hello:v1`,
          'docker-daemon:grail/hello:v1',
        ],
      })
      const port = await freePort()
      const run = await d.docker([
        'run',
        '--detach',
        '--network=host',
        '-e',
        `PORT=${port}`,
        'grail/hello:v1',
      ])
      assert.equal(run.code, 0, run.stderr)
      try {
        const page = await fetchWithRetry(`http://127.0.0.1:${port}/`, 10_000)
        assert.match(page, /Hello from Grail/)
        assert.equal(await fetchWithRetry(`http://127.0.0.1:${port}/healthz`, 2_000), 'ok\n')
      } finally {
        await d.docker(['rm', '--force', run.stdout.trim()])
      }
    })
  })
})
