// Images leave the machine: Grail against Debian's docker-registry on loopback with TLS (a CA this test
// makes) and htpasswd basic auth. Push, pull and deploy; wrong credentials; a fresh clone that deploys the
// locked digests from the registry without building; no credential anywhere Grail writes; and the faults:
// the registry killed mid-push, a blob altered on the way, 20 pushes at once.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { cp, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import type { Lock } from '../../src/lifecycle/lock.js'
import {
  type CliResult,
  busyboxProject,
  GRAIL_BIN,
  grail,
  parseJson,
  removeDir,
  tearDown,
} from '../helpers/project.js'
import { filesContaining, registryGet, startRegistry, type TestRegistry } from '../helpers/registry.js'
import { httpdImages } from '../helpers/specs.js'
import { startTamperProxy, type TamperProxy } from '../helpers/tamper-proxy.js'

const PROJECT = 'regtest'
const OCI = { accept: 'application/vnd.oci.image.manifest.v1+json' }

const spec = (r: TestRegistry, extra = '') => `project: ${PROJECT}
registry:
  url: ${r.url}
  ca: ./ca.pem
  auth: { env: { username: REG_USER, password: REG_PASS } }
${httpdImages()}${extra}services:
  web:
    image: web
    replicas: 2
    port: 8080
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
`

interface Status {
  instances: Array<{ image: string; digest: string; health: string }>
}

describe('registry with TLS and htpasswd (Debian docker-registry, local provider)', () => {
  let reg: TestRegistry
  let dir: string
  const clones: string[] = []
  /** every byte Grail printed in this file: the credential must be in none of it */
  const outputs: string[] = []
  let env: Record<string, string>
  const run = async (
    args: string[],
    cwd = dir,
    extraEnv: Record<string, string> = {},
  ): Promise<CliResult> => {
    const res = await grail(args, { cwd, env: { ...env, ...extraEnv } })
    outputs.push(res.stdout, res.stderr)
    return res
  }
  const lock = async (d = dir) => JSON.parse(await readFile(join(d, 'grail.lock'), 'utf8')) as Lock

  before(async () => {
    reg = await startRegistry({ tls: true, auth: 'htpasswd' })
    env = { REG_USER: reg.username, REG_PASS: reg.password }
    dir = await busyboxProject({ 'grail.yaml': spec(reg), 'site/index.html': 'v1\n' })
    await cp(reg.caFile, join(dir, 'ca.pem'))
    const built = await run(['build'])
    assert.equal(built.code, 0, built.stderr)
  })
  after(async () => {
    for (const c of clones) await tearDown(c).catch(() => removeDir(c))
    await tearDown(dir).catch(() => removeDir(dir))
    await reg?.stop()
  })

  test('grail push sends the locked version; the registry has the same manifest digest', async () => {
    const res = await run(['push'])
    assert.equal(res.code, 0, res.stderr + res.stdout)
    const digest = (await lock()).images.web?.digest as string
    assert.match(res.stdout, new RegExp(`pushed web v1 .*${reg.host}/${PROJECT}/web@${digest}`))
    // (without an OCI Accept, distribution 2.8 answers 404 for an OCI manifest: it only converts Docker ones)
    const head = await registryGet(reg, `/v2/${PROJECT}/web/manifests/v1`, { method: 'HEAD', headers: OCI })
    assert.equal(head.status, 200)
    assert.equal(head.headers['docker-content-digest'], digest)
    // a second push uploads nothing
    const again = await run(['--json', 'push'])
    const pushed = parseJson<{ pushed: Array<{ uploaded: number; skipped: number }> }>(again).pushed
    assert.equal(pushed[0]?.uploaded, 0)
    assert.ok((pushed[0]?.skipped ?? 0) >= 2)
  })

  test('wrong credentials fail with an error naming the registry, and the password is not printed', async () => {
    const wrong = 'not-the-password-4711'
    const res = await run(['push'], dir, { REG_PASS: wrong })
    assert.equal(res.code, 1)
    assert.match(res.stderr, /REGISTRY_AUTH|refused/)
    assert.ok(res.stderr.includes(reg.host), res.stderr)
    assert.ok(!res.stderr.includes(wrong) && !res.stdout.includes(wrong))
    const unset = await run(['push'], dir, { REG_PASS: '' })
    assert.equal(unset.code, 1)
    assert.match(unset.stderr, /REG_PASS/)
  })

  test('a registry whose CA is not given is not trusted: the error names the registry and says how to trust it', async () => {
    const untrusting = await busyboxProject({
      'grail.yaml': spec(reg).replace('  ca: ./ca.pem\n', ''),
      'site/index.html': 'v1\n',
    })
    clones.push(untrusting)
    const res = await run(['pull', `${reg.host}/${PROJECT}/web:v1`], untrusting)
    assert.equal(res.code, 1)
    assert.ok(res.stderr.includes(reg.host), res.stderr)
    assert.match(res.stderr, /certificate|CA/i)
    assert.match(res.stderr, /ca:/)
  })

  test('a fresh clone with an empty .grail/ deploys exactly the locked digest from the registry, building nothing', async () => {
    const clone = await busyboxProject({})
    clones.push(clone)
    for (const f of ['grail.yaml', 'grail.lock', 'ca.pem', 'site'])
      await cp(join(dir, f), join(clone, f), { recursive: true })
    // the clone's rootfs.tar is its own: nothing from it may be needed to deploy the lock
    const digest = (await lock()).images.web?.digest as string
    const res = await run(['apply', '--locked'], clone)
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.match(res.stdout, new RegExp(`pulled ${reg.host}/${PROJECT}/web@${digest}`))
    const s = parseJson<Status>(await run(['--json', 'status'], clone))
    assert.equal(s.instances.length, 2)
    assert.ok(
      s.instances.every((i) => i.digest === digest && i.health === 'healthy'),
      JSON.stringify(s),
    )
    const events = parseJson<Array<{ kind: string }>>(await run(['--json', 'events'], clone))
    assert.ok(!events.some((e) => e.kind === 'image.built'), 'nothing was built')
    assert.ok(events.some((e) => e.kind === 'image.pulled'))
    // the pulled image is filed under its name, from its label
    const images = parseJson<Array<{ name: string; digest: string }>>(await run(['--json', 'images'], clone))
    assert.deepEqual(
      images.map((i) => [i.name, i.digest]),
      [['web', digest]],
    )
    // and apply again pulls nothing
    const again = await run(['apply', '--locked'], clone)
    assert.equal(again.code, 0, again.stderr)
    assert.doesNotMatch(again.stdout, /pulled/)
  })

  test('grail pull by digest files a Grail image under its label, with its provenance', async () => {
    const other = await busyboxProject({ 'grail.yaml': spec(reg), 'site/index.html': 'x\n' })
    clones.push(other)
    await cp(reg.caFile, join(other, 'ca.pem'))
    const digest = (await lock()).images.web?.digest as string
    const res = await run(['--json', 'pull', `${reg.host}/${PROJECT}/web@${digest}`], other)
    const pulled = parseJson<{
      record: { name: string; digest: string }
      provenance?: { image: string; project?: string }
    }>(res)
    assert.equal(pulled.record.name, 'web')
    assert.equal(pulled.record.digest, digest)
    assert.deepEqual(pulled.provenance, { image: 'web', project: PROJECT })
    const byTag = await run(['pull', `${reg.host}/${PROJECT}/web:v1`], other)
    assert.equal(byTag.code, 0, byTag.stderr)
    assert.match(byTag.stdout, /already in the catalog/)
  })

  test('a blob altered on the way fails the pull, naming the digest, and nothing is stored', async () => {
    const digest = (await lock()).images.web?.digest as string
    const manifest = JSON.parse(
      (
        await registryGet(reg, `/v2/${PROJECT}/web/manifests/${digest}`, {
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
        })
      ).body,
    ) as { layers: Array<{ digest: string }> }
    const victim = manifest.layers.at(-1)?.digest as string
    const proxy: TamperProxy = await startTamperProxy(reg, { corruptBlob: (d) => d === victim })
    const fresh = await busyboxProject({
      'grail.yaml': spec(reg).replace(reg.url, proxy.url),
      'site/index.html': 'x\n',
    })
    clones.push(fresh)
    await cp(reg.caFile, join(fresh, 'ca.pem'))
    try {
      const res = await run(['pull', `${proxy.host}/${PROJECT}/web@${digest}`], fresh)
      assert.equal(res.code, 1)
      assert.ok(res.stderr.includes(victim), res.stderr)
      assert.ok(proxy.corrupted.length >= 1, 'the proxy altered the blob')
      const blobs = await readdir(join(fresh, '.grail', 'oci', 'blobs', 'sha256')).catch(() => [] as string[])
      assert.ok(!blobs.includes(victim.slice(7)), 'the altered blob is not stored')
      assert.ok(!blobs.includes(digest.slice(7)), 'no manifest for an image with a bad blob')
      const tmp = await readdir(join(fresh, '.grail', 'tmp')).catch(() => [] as string[])
      assert.deepEqual(tmp, [])
      const images = parseJson<unknown[]>(await run(['--json', 'images'], fresh))
      assert.deepEqual(images, [])
    } finally {
      await proxy.stop()
    }
  })

  test('the registry killed in the middle of a push: the next push completes, and no manifest points to a missing blob', async () => {
    // a large layer, so that the push is still uploading when the registry dies
    const big = Buffer.alloc(48 * 1024 * 1024)
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i * 2654435761) >>> 0, i)
    await writeFile(join(dir, 'site', 'big.bin'), big)
    const built = await run(['build'])
    assert.equal(built.code, 0, built.stderr)
    const digest = (await lock()).images.web?.digest as string
    const child = spawn(process.execPath, [GRAIL_BIN, 'push'], {
      cwd: dir,
      env: { ...process.env, ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (d) => {
      output += d
    })
    child.stderr.on('data', (d) => {
      output += d
    })
    const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)))
    // wait for an upload session of this repository, then SIGKILL the registry
    const uploads = join(
      reg.storageDir,
      'docker',
      'registry',
      'v2',
      'repositories',
      PROJECT,
      'web',
      '_uploads',
    )
    const until = Date.now() + 60_000
    while (Date.now() < until && (await readdir(uploads).catch(() => [])).length === 0) await sleep(10)
    await reg.kill()
    const code = await exited
    outputs.push(output)
    assert.equal(code, 1, output)
    await reg.restart()
    // the manifest of the cut push is not there (its blobs were not all confirmed)
    const head = await registryGet(reg, `/v2/${PROJECT}/web/manifests/${digest}`, {
      method: 'HEAD',
      headers: OCI,
    })
    assert.equal(head.status, 404)
    const res = await run(['push'])
    assert.equal(res.code, 0, res.stderr + res.stdout)
    await assertEveryManifestWhole(reg, `${PROJECT}/web`)
  })

  test('20 concurrent pushes of images sharing layers all succeed', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `app${i}`)
    const images = names
      .map(
        (n) => `  ${n}:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/index.html /srv/www/index.html
      - env: { WHICH: ${n} }
`,
      )
      .join('')
    const many = await busyboxProject({
      'grail.yaml': `project: ${PROJECT}
registry:
  url: ${reg.url}
  ca: ./ca.pem
  auth: { env: { username: REG_USER, password: REG_PASS } }
images:
${images}`,
      'site/index.html': 'shared\n',
    })
    clones.push(many)
    await cp(reg.caFile, join(many, 'ca.pem'))
    const built = await run(['build'], many)
    assert.equal(built.code, 0, built.stderr)
    const results = await Promise.all(names.map((n) => run(['push', n], many)))
    for (const [i, r] of results.entries()) assert.equal(r.code, 0, `${names[i]}: ${r.stderr}`)
    for (const n of names) await assertEveryManifestWhole(reg, `${PROJECT}/${n}`)
  })

  test('no credential appears in .grail/, the event log, any output or any image blob', async () => {
    const secret = reg.password
    assert.ok(secret.length >= 16)
    const events = await run(['--json', 'events'])
    assert.ok(!events.stdout.includes(secret))
    for (const d of [dir, ...clones]) {
      assert.deepEqual(await filesContaining(join(d, '.grail'), secret), [], `${d}/.grail`)
    }
    // the image blobs in the registry's own storage
    assert.deepEqual(await filesContaining(join(reg.storageDir, 'docker'), secret), [])
    assert.ok(!outputs.some((o) => o.includes(secret)), 'printed by a command')
    // and the base64 form basic auth sends
    const b64 = Buffer.from(`${reg.username}:${secret}`).toString('base64')
    assert.ok(!outputs.some((o) => o.includes(b64)))
    for (const d of [dir, ...clones]) assert.deepEqual(await filesContaining(join(d, '.grail'), b64), [])
  })
})

/** Every tag's manifest in `repository` resolves, and so does every blob it names. */
async function assertEveryManifestWhole(reg: TestRegistry, repository: string): Promise<void> {
  const tags = JSON.parse((await registryGet(reg, `/v2/${repository}/tags/list`)).body) as {
    tags: string[] | null
  }
  assert.ok((tags.tags ?? []).length > 0, `${repository} has tags`)
  for (const tag of tags.tags ?? []) {
    const m = await registryGet(reg, `/v2/${repository}/manifests/${tag}`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    })
    assert.equal(m.status, 200, `${repository}:${tag}`)
    const manifest = JSON.parse(m.body) as { config: { digest: string }; layers: Array<{ digest: string }> }
    for (const b of [manifest.config, ...manifest.layers]) {
      const h = await registryGet(reg, `/v2/${repository}/blobs/${b.digest}`, { method: 'HEAD' })
      assert.equal(h.status, 200, `${repository}:${tag} names ${b.digest}, which the registry lacks`)
    }
  }
}
