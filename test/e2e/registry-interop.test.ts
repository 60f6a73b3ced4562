// Interoperability with clients Grail did not write, against Debian's docker-registry on plain-HTTP
// loopback (no auth) and a real dockerd: skopeo and docker read what Grail pushed, with the digest in
// grail.lock; Grail pulls (and deploys) what skopeo pushed from OCI layouts, as OCI and as Docker v2
// manifests, and picks linux/amd64 out of an image index. Manifest digests are compared byte for byte on
// both sides.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Lock } from '../../src/lifecycle/lock.js'
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js'
import { type Dockerd, startDockerd } from '../helpers/dockerd.js'
import { makeOciIndexLayout, makeOciLayout } from '../helpers/oci-layout.js'
import { busyboxProject, type CliResult, grail, parseJson, removeDir, tearDown } from '../helpers/project.js'
import { registryGet, startRegistry, type TestRegistry } from '../helpers/registry.js'
import { freePort } from '../helpers/net.js'
import { skopeo } from '../helpers/skopeo.js'

const PROJECT = 'interop'
const SITE = 'served from a registry, read by others\n'
const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

const registryBlock = (r: TestRegistry) => `registry:
  url: ${r.url}
  auth: none
`

const spec = (r: TestRegistry) => `project: ${PROJECT}
${registryBlock(r)}images:
  web:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, "exec httpd -f -p $PORT -h /srv/www"]
`

interface Pulled {
  record: { name: string; digest: string; version: number }
  created: boolean
}

describe('registry interop: skopeo and dockerd against what Grail pushes and pulls (plain-HTTP loopback registry)', () => {
  let reg: TestRegistry
  let dockerd: Dockerd
  let dir: string
  let digest: string
  const dirs: string[] = []
  const scratch: string[] = []
  const run = (args: string[], cwd = dir): Promise<CliResult> => grail(args, { cwd })
  const tmp = async (prefix: string): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), prefix))
    scratch.push(d)
    return d
  }

  before(async () => {
    ;[reg, dockerd] = await Promise.all([startRegistry({ auth: 'none' }), startDockerd({ name: 'interop' })])
    dir = await busyboxProject({ 'grail.yaml': spec(reg), 'site/index.html': SITE })
    const built = await run(['build'])
    assert.equal(built.code, 0, built.stderr)
    const pushed = await run(['push'])
    assert.equal(pushed.code, 0, pushed.stderr + pushed.stdout)
    const lock = JSON.parse(await readFile(join(dir, 'grail.lock'), 'utf8')) as Lock
    digest = lock.images.web?.digest as string
    assert.match(digest, /^sha256:[0-9a-f]{64}$/)
  })
  after(async () => {
    for (const d of dirs) await tearDown(d).catch(() => removeDir(d))
    if (dir) await tearDown(dir).catch(() => removeDir(dir))
    for (const d of scratch) await removeDir(d)
    await dockerd?.stop()
    await reg?.stop()
  })

  test('skopeo inspect --raw returns the bytes of the digest in grail.lock, by tag and by digest', async () => {
    for (const ref of [`${reg.host}/${PROJECT}/web:v1`, `${reg.host}/${PROJECT}/web@${digest}`]) {
      const raw = await skopeo(['inspect', '--raw', `docker://${ref}`], { registry: reg })
      assert.equal(raw.code, 0, raw.stderr)
      assert.equal(sha(Buffer.from(raw.stdout, 'utf8')), digest, ref)
      assert.equal(JSON.parse(raw.stdout).mediaType, 'application/vnd.oci.image.manifest.v1+json')
    }
    const info = await skopeo(['inspect', `docker://${reg.host}/${PROJECT}/web:v1`], { registry: reg })
    assert.equal(info.code, 0, info.stderr)
    const parsed = JSON.parse(info.stdout) as { Digest: string; Labels: Record<string, string> }
    assert.equal(parsed.Digest, digest)
    assert.equal(parsed.Labels['dev.grail.image.name'], 'web')
    assert.equal(parsed.Labels['dev.grail.image.project'], PROJECT)
  })

  test('skopeo copy to an OCI layout keeps the manifest digest, and every blob it names checks out', async () => {
    const out = await tmp('grail-interop-copy-')
    const res = await skopeo(['copy', `docker://${reg.host}/${PROJECT}/web:v1`, `oci:${out}:x`], {
      registry: reg,
    })
    assert.equal(res.code, 0, res.stderr)
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as {
      manifests: Array<{ digest: string }>
    }
    assert.equal(index.manifests[0]?.digest, digest)
    const manifestBytes = await readFile(join(out, 'blobs', 'sha256', digest.slice(7)))
    assert.equal(sha(manifestBytes), digest)
    const m = JSON.parse(manifestBytes.toString('utf8')) as {
      config: { digest: string }
      layers: Array<{ digest: string }>
    }
    for (const b of [m.config, ...m.layers]) {
      assert.equal(sha(await readFile(join(out, 'blobs', 'sha256', b.digest.slice(7)))), b.digest)
    }
  })

  test('a real dockerd pulls the image by digest and runs it', async () => {
    const ref = `${reg.host}/${PROJECT}/web@${digest}`
    const pull = await dockerd.docker(['pull', ref])
    assert.equal(pull.code, 0, pull.stderr + pull.stdout)
    const ran = await dockerd.docker([
      'run',
      '--rm',
      '--network',
      'host',
      '--entrypoint',
      '/bin/busybox',
      ref,
      'cat',
      '/srv/www/index.html',
    ])
    assert.equal(ran.code, 0, ran.stderr)
    assert.equal(ran.stdout, SITE)
    // docker's image ID is the config's digest: the same config blob Grail wrote
    const manifest = JSON.parse(
      (
        await registryGet(reg, `/v2/${PROJECT}/web/manifests/${digest}`, {
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
        })
      ).body,
    ) as { config: { digest: string } }
    const id = await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', ref])
    assert.equal(id.stdout.trim(), manifest.config.digest)
    const inspect = await dockerd.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref])
    assert.equal(inspect.code, 0, inspect.stderr)
    assert.ok(
      (JSON.parse(inspect.stdout) as string[]).includes(`${reg.host}/${PROJECT}/web@${digest}`),
      inspect.stdout,
    )
  })

  describe('Grail pulls what skopeo pushed from an OCI layout', () => {
    let layoutDigest: string
    let layoutLayer: string

    before(async () => {
      const layout = await tmp('grail-interop-layout-')
      const rootfs = join(await tmp('grail-interop-rootfs-'), 'rootfs.tar')
      makeBusyboxRootfs(rootfs)
      const img = await makeOciLayout(layout, {
        rootfsTar: rootfs,
        tag: 'bb',
        config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin:/usr/bin'] },
      })
      layoutDigest = img.manifestDigest
      layoutLayer = img.layerDigest
      const res = await skopeo(['copy', `oci:${layout}:bb`, `docker://${reg.host}/other/thing:1`], {
        registry: reg,
      })
      assert.equal(res.code, 0, res.stderr)
      // skopeo copied the manifest as it is: the registry serves the layout's bytes
      const raw = await skopeo(['inspect', '--raw', `docker://${reg.host}/other/thing:1`], { registry: reg })
      assert.equal(sha(Buffer.from(raw.stdout, 'utf8')), layoutDigest)
      // and a Docker v2 schema 2 conversion of the same layout, under another repository
      const v2 = await skopeo(
        ['copy', '--format=v2s2', `oci:${layout}:bb`, `docker://${reg.host}/other/docker2:1`],
        { registry: reg },
      )
      assert.equal(v2.code, 0, v2.stderr)
    })

    test('grail pull --as files it with the layout manifest digest', async () => {
      const res = await run(['--json', 'pull', `${reg.host}/other/thing:1`, '--as', 'thing'])
      const pulled = parseJson<Pulled>(res)
      assert.equal(pulled.record.name, 'thing')
      assert.equal(pulled.record.digest, layoutDigest)
      const images = parseJson<Array<{ name: string; digest: string }>>(await run(['--json', 'images']))
      assert.ok(
        images.some((i) => i.name === 'thing' && i.digest === layoutDigest),
        JSON.stringify(images),
      )
      const blobs = join(dir, '.grail', 'oci', 'blobs', 'sha256')
      assert.equal(sha(await readFile(join(blobs, layoutDigest.slice(7)))), layoutDigest)
    })

    test('a Docker v2 schema 2 manifest is accepted: the digest is what skopeo inspect --raw hashes to', async () => {
      const raw = await skopeo(['inspect', '--raw', `docker://${reg.host}/other/docker2:1`], {
        registry: reg,
      })
      assert.equal(raw.code, 0, raw.stderr)
      assert.equal(JSON.parse(raw.stdout).mediaType, 'application/vnd.docker.distribution.manifest.v2+json')
      const v2digest = sha(Buffer.from(raw.stdout, 'utf8'))
      assert.notEqual(v2digest, layoutDigest)
      const pulled = parseJson<Pulled>(await run(['--json', 'pull', `${reg.host}/other/docker2:1`]))
      assert.equal(pulled.record.name, 'docker2')
      assert.equal(pulled.record.digest, v2digest)
      const stored = await readFile(join(dir, '.grail', 'oci', 'blobs', 'sha256', v2digest.slice(7)))
      assert.equal(stored.toString('utf8'), raw.stdout, 'the manifest is stored as the registry served it')
    })

    test('deploy: base: {registry} on the skopeo-pushed image, grail up serves, the lock pins the base digest', async () => {
      const publish = await freePort()
      const app = await busyboxProject({
        'grail.yaml': `project: interop-app
${registryBlock(reg)}images:
  app:
    base: { registry: ${reg.host}/other/thing:1 }
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, "exec httpd -f -p $PORT -h /srv/www"]
services:
  app:
    image: app
    port: 8080
    publish: ${publish}
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
`,
        'site/index.html': 'on a base skopeo pushed\n',
      })
      dirs.push(app)
      const up = await run(['up'], app)
      assert.equal(up.code, 0, up.stderr + up.stdout)
      const status = parseJson<{ instances: Array<{ image: string; health: string }> }>(
        await run(['--json', 'status'], app),
      )
      assert.equal(status.instances.length, 1, JSON.stringify(status))
      assert.equal(status.instances[0]?.health, 'healthy', JSON.stringify(status))
      const page = await fetch(`http://127.0.0.1:${publish}/index.html`)
      assert.equal(await page.text(), 'on a base skopeo pushed\n')
      const locked = (JSON.parse(await readFile(join(app, 'grail.lock'), 'utf8')) as Lock).images.app
      assert.deepEqual(locked?.base, { ref: `${reg.host}/other/thing:1`, digest: layoutDigest })
      // the app's first layer is the layout's own, byte for byte
      assert.equal(locked?.layers[0], layoutLayer)
      // the tag moves in the registry (skopeo pushes another image under it): the pin holds, the next
      // build is the same image
      const moved = await tmp('grail-interop-moved-')
      await makeOciLayout(moved, { files: { 'moved.txt': 'not busybox\n' }, tag: 'm' })
      const retag = await skopeo(['copy', `oci:${moved}:m`, `docker://${reg.host}/other/thing:1`], {
        registry: reg,
      })
      assert.equal(retag.code, 0, retag.stderr)
      const rebuilt = await run(['build'], app)
      assert.equal(rebuilt.code, 0, rebuilt.stderr)
      const after = (JSON.parse(await readFile(join(app, 'grail.lock'), 'utf8')) as Lock).images.app
      assert.equal(after?.digest, locked?.digest)
      assert.deepEqual(after?.base, locked?.base)
    })
  })

  test('an image built on the Docker v2 base, pushed by Grail: skopeo reads it, dockerd pulls and runs it', async () => {
    const app = await busyboxProject({
      'grail.yaml': `project: interop-v2
${registryBlock(reg)}images:
  app:
    base: { registry: ${reg.host}/other/docker2:1 }
    steps:
      - copy: site/ /srv/www
`,
      'site/index.html': 'on a docker v2 base\n',
    })
    dirs.push(app)
    const built = await run(['build'], app)
    assert.equal(built.code, 0, built.stderr + built.stdout)
    const pushed = await run(['push'], app)
    assert.equal(pushed.code, 0, pushed.stderr + pushed.stdout)
    const appDigest = (JSON.parse(await readFile(join(app, 'grail.lock'), 'utf8')) as Lock).images.app
      ?.digest as string
    const ref = `${reg.host}/interop-v2/app@${appDigest}`
    const raw = await skopeo(['inspect', '--raw', `docker://${ref}`], { registry: reg })
    assert.equal(raw.code, 0, raw.stderr)
    assert.equal(sha(Buffer.from(raw.stdout, 'utf8')), appDigest)
    const m = JSON.parse(raw.stdout) as { mediaType: string; layers: Array<{ mediaType: string }> }
    assert.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json')
    // an OCI manifest names OCI layers: the base's Docker layer types are not carried over
    for (const l of m.layers)
      assert.match(l.mediaType, /^application\/vnd\.oci\.image\.layer\.v1\.tar/, raw.stdout)
    const pull = await dockerd.docker(['pull', ref])
    assert.equal(pull.code, 0, pull.stderr + pull.stdout)
    const ran = await dockerd.docker([
      'run',
      '--rm',
      '--network',
      'host',
      '--entrypoint',
      '/bin/busybox',
      ref,
      'cat',
      '/srv/www/index.html',
    ])
    assert.equal(ran.code, 0, ran.stderr)
    assert.equal(ran.stdout, 'on a docker v2 base\n')
  })

  test('an image index: grail pull picks the linux/amd64 manifest; skopeo sees the same index digest', async () => {
    const layout = await tmp('grail-interop-index-')
    const multi = await makeOciIndexLayout(layout, {
      tag: 'multi',
      platforms: [
        { architecture: 'arm64', files: { 'which.txt': 'arm64\n' } },
        { architecture: 'amd64', files: { 'which.txt': 'amd64\n' } },
      ],
    })
    const amd64 = multi.images.find((i) => i.architecture === 'amd64')?.manifestDigest as string
    const res = await skopeo(['copy', '--all', `oci:${layout}:multi`, `docker://${reg.host}/other/multi:1`], {
      registry: reg,
    })
    assert.equal(res.code, 0, res.stderr)
    const raw = await skopeo(['inspect', '--raw', `docker://${reg.host}/other/multi:1`], { registry: reg })
    assert.equal(sha(Buffer.from(raw.stdout, 'utf8')), multi.indexDigest)
    const head = await registryGet(reg, `/v2/other/multi/manifests/1`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.oci.image.index.v1+json' },
    })
    assert.equal(head.headers['docker-content-digest'], multi.indexDigest)

    const byTag = parseJson<Pulled>(await run(['--json', 'pull', `${reg.host}/other/multi:1`]))
    assert.equal(byTag.record.name, 'multi')
    assert.equal(byTag.record.digest, amd64)
    // by the index's own digest: the same amd64 manifest (already in the catalog)
    const byDigest = await run(['--json', 'pull', `${reg.host}/other/multi@${multi.indexDigest}`])
    const again = parseJson<Pulled>(byDigest)
    assert.equal(again.record.digest, amd64)
    assert.equal(again.created, false)
  })

  test('skopeo copies what Grail pushed to another repository; grail pulls that copy with the same digest', async () => {
    const res = await skopeo(
      ['copy', `docker://${reg.host}/${PROJECT}/web:v1`, `docker://${reg.host}/copied/web:x`],
      { registry: reg },
    )
    assert.equal(res.code, 0, res.stderr)
    const other = await busyboxProject({ 'grail.yaml': spec(reg), 'site/index.html': 'other\n' })
    dirs.push(other)
    const pulled = parseJson<Pulled & { provenance?: { image: string; project?: string } }>(
      await run(['--json', 'pull', `${reg.host}/copied/web:x`], other),
    )
    assert.equal(pulled.record.digest, digest)
    // filed under its Grail label, wherever it was copied to
    assert.equal(pulled.record.name, 'web')
    assert.deepEqual(pulled.provenance, { image: 'web', project: PROJECT })
  })

  test('an index with no linux/amd64 manifest: the pull fails naming the platforms it has, and stores nothing', async () => {
    const layout = await tmp('grail-interop-arm-')
    await makeOciIndexLayout(layout, {
      tag: 'arm',
      platforms: [
        { architecture: 'arm64', files: { 'which.txt': 'arm64\n' } },
        { architecture: 's390x', files: { 'which.txt': 's390x\n' } },
      ],
    })
    const res = await skopeo(['copy', '--all', `oci:${layout}:arm`, `docker://${reg.host}/other/armonly:1`], {
      registry: reg,
    })
    assert.equal(res.code, 0, res.stderr)
    const other = await busyboxProject({ 'grail.yaml': spec(reg), 'site/index.html': 'other\n' })
    dirs.push(other)
    const pull = await run(['pull', `${reg.host}/other/armonly:1`], other)
    assert.equal(pull.code, 1, pull.stdout + pull.stderr)
    assert.match(pull.stderr, /linux\/amd64/)
    assert.match(pull.stderr, /linux\/arm64/)
    assert.match(pull.stderr, /linux\/s390x/)
    const images = parseJson<unknown[]>(await run(['--json', 'images'], other))
    assert.deepEqual(images, [])
  })
})
