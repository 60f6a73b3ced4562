// Proves the registry test harness against the real parts: Debian's docker-registry (distribution 2.8) with
// TLS + htpasswd, TLS + the test's token issuer, and plain HTTP without auth; skopeo 1.9 as the client; the
// tamper proxy really altering bytes and cutting connections; a real dockerd pulling by digest.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { isErrno } from '../../src/errors.js'
import { type Dockerd, startDockerd } from '../helpers/dockerd.js'
import { makeOciLayout, type OciLayoutImage } from '../helpers/oci-layout.js'
import {
  type RegistryAuth,
  rawRequest,
  registryRequest,
  type StartRegistryOptions,
  startRegistry,
  type TestRegistry,
} from '../helpers/registry.js'
import { trustInDockerd, writeDockerAuth } from '../helpers/registry-docker.js'
import { skopeo } from '../helpers/skopeo.js'
import { startTamperProxy, type TamperProxy } from '../helpers/tamper-proxy.js'

const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`
const REPO_NAME = 'grail/harness'

async function allCmdlines(): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      out.push((await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' '))
    } catch (err) {
      if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ESRCH')) throw err // exited while we looked
    }
  }
  return out
}

let work: string
let img: OciLayoutImage
const fileStarted = performance.now()

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'grail-regh-'))
  img = await makeOciLayout(join(work, 'layout'), {
    files: { 'hello.txt': 'hello from the registry harness\n', 'etc/motd': `${'x'.repeat(4000)}\n` },
    tag: 'v1',
  })
})

after(async () => {
  if (work) await rm(work, { recursive: true, force: true })
  console.log(`# registry-harness: ${Math.round(performance.now() - fileStarted)} ms for the file`)
})

const MODES: { name: string; opts: StartRegistryOptions & { auth: RegistryAuth }; proxyTls: boolean }[] = [
  { name: 'TLS + htpasswd', opts: { tls: true, auth: 'htpasswd' }, proxyTls: false },
  { name: 'TLS + token issuer', opts: { tls: true, auth: 'token' }, proxyTls: true },
  { name: 'plain HTTP, no auth', opts: { tls: false, auth: 'none' }, proxyTls: false },
]

for (const mode of MODES) {
  describe(`registry harness: ${mode.name}`, () => {
    let reg: TestRegistry
    let proxy: TamperProxy | undefined
    const ref = (): string => `docker://${reg.host}/${REPO_NAME}:v1`

    before(async () => {
      const t0 = performance.now()
      reg = await startRegistry(mode.opts)
      console.log(`# ${mode.name}: registry up in ${Math.round(performance.now() - t0)} ms`)
    })
    after(async () => {
      await proxy?.stop()
      await reg?.stop()
      if (reg) await assert.rejects(stat(reg.dir), { code: 'ENOENT' }, 'stop() removes the registry dir')
    })

    test('skopeo copies an OCI layout in and inspect reads back the same manifest digest', async () => {
      assert.match(reg.url, mode.opts.tls ? /^https:\/\/127\.0\.0\.1:\d+$/ : /^http:\/\/127\.0\.0\.1:\d+$/)
      // While skopeo runs, no process on the machine has the password in its argv.
      const copying = skopeo(['copy', `oci:${img.dir}:${img.tag}`, ref()], { registry: reg })
      let done = false
      void copying.finally(() => {
        done = true
      })
      let scans = 0
      while (!done) {
        for (const cmdline of await allCmdlines()) assert.ok(!cmdline.includes(reg.password), cmdline)
        scans++
        await sleep(5)
      }
      const copy = await copying
      assert.equal(copy.code, 0, copy.stderr)
      assert.ok(scans > 0)
      const raw = await skopeo(['inspect', '--raw', ref()], { registry: reg })
      assert.equal(raw.code, 0, raw.stderr)
      assert.equal(sha256(raw.stdout), img.manifestDigest)
      const info = await skopeo(['inspect', ref()], { registry: reg })
      assert.equal(info.code, 0, info.stderr)
      assert.equal((JSON.parse(info.stdout) as { Digest: string }).Digest, img.manifestDigest)
      // The layer is where blobPath says, with exactly its bytes.
      assert.equal(sha256(await readFile(reg.blobPath(img.layerDigest))), img.layerDigest)
    })

    if (mode.opts.auth === 'none') {
      test('anonymous clients may read (no auth configured)', async () => {
        const res = await registryRequest(reg, `/v2/${REPO_NAME}/manifests/${img.manifestDigest}`, {
          creds: null,
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
        })
        assert.equal(res.status, 200)
      })
    } else {
      test('a wrong password and no credentials both fail with 401', async () => {
        const wrong = { username: reg.username, password: `${reg.password}x` }
        const bad = await skopeo(['inspect', '--raw', ref()], { registry: reg, creds: wrong })
        assert.notEqual(bad.code, 0)
        assert.match(bad.stderr, /unauthorized|401/i)
        const otherUser = await skopeo(['inspect', '--raw', ref()], {
          registry: reg,
          creds: { username: 'someone-else', password: reg.password },
        })
        assert.notEqual(otherUser.code, 0)
        for (const creds of [wrong, null]) {
          const res = await registryRequest(reg, `/v2/${REPO_NAME}/tags/list`, { creds })
          assert.equal(res.status, 401, `creds ${creds ? 'wrong' : 'none'}`)
        }
        const ok = await registryRequest(reg, `/v2/${REPO_NAME}/tags/list`)
        assert.equal(ok.status, 200, ok.body.toString())
        assert.deepEqual(JSON.parse(ok.body.toString()).tags, ['v1'])
      })
    }

    test('the password stays out of argv, logs and world-readable files', async () => {
      const cmdline = await readFile(`/proc/${reg.pid}/cmdline`, 'utf8')
      assert.ok(!cmdline.includes(reg.password))
      assert.ok(!reg.logs().includes(reg.password), 'registry log')
      assert.equal((await stat(join(reg.dir, 'config.yml'))).mode & 0o077, 0)
      if (mode.opts.auth === 'htpasswd') {
        const htpasswd = await readFile(join(reg.dir, 'htpasswd'), 'utf8')
        assert.match(htpasswd, /^grail-test:\$2y\$/, 'a bcrypt entry')
        assert.ok(!htpasswd.includes(reg.password))
        assert.equal((await stat(join(reg.dir, 'htpasswd'))).mode & 0o077, 0)
      }
    })

    test(`the tamper proxy (${mode.proxyTls ? 'TLS' : 'HTTP'}) flips a byte of the chosen blob only`, async () => {
      proxy = await startTamperProxy(reg, { corruptBlob: (d) => d === img.layerDigest, tls: mode.proxyTls })
      assert.ok(proxy.url.startsWith(mode.proxyTls ? 'https://' : 'http://'))
      const layer = await registryRequest(reg, `/v2/${REPO_NAME}/blobs/${img.layerDigest}`, {
        via: proxy.url,
      })
      assert.equal(layer.status, 200)
      const stored = await readFile(reg.blobPath(img.layerDigest))
      assert.equal(layer.body.length, stored.length, 'same length')
      assert.equal(Number(layer.headers['content-length']), stored.length, 'same Content-Length')
      assert.notEqual(sha256(layer.body), img.layerDigest, 'altered bytes')
      assert.equal(
        [...layer.body].filter((b, i) => b !== stored[i]).length,
        1,
        'exactly one byte differs from the stored blob',
      )
      assert.deepEqual(proxy.corrupted, [img.layerDigest])
      const config = await registryRequest(reg, `/v2/${REPO_NAME}/blobs/${img.configDigest}`, {
        via: proxy.url,
      })
      assert.equal(sha256(config.body), img.configDigest, 'other blobs pass unaltered')
      const direct = await registryRequest(reg, `/v2/${REPO_NAME}/blobs/${img.layerDigest}`)
      assert.equal(sha256(direct.body), img.layerDigest, 'the registry itself serves the right bytes')

      // skopeo, pulling through the proxy, notices.
      const out = join(work, `out-${reg.port}`)
      const pull = await skopeo(['copy', `docker://${proxy.host}/${REPO_NAME}:v1`, `oci:${out}:v1`], {
        registry: reg,
        host: proxy.host,
        plainHttp: !mode.proxyTls,
      })
      assert.notEqual(pull.code, 0)
      assert.match(pull.stderr, new RegExp(`[Dd]igest did not match.*${img.layerDigest}`))
    })

    test('cutAfterBytes drops blob downloads and uploads mid-body', async () => {
      const cutter = await startTamperProxy(reg, { cutAfterBytes: 100, tls: mode.proxyTls })
      try {
        await assert.rejects(
          registryRequest(reg, `/v2/${REPO_NAME}/blobs/${img.layerDigest}`, { via: cutter.url }),
          /socket hang up|ECONNRESET|aborted/,
        )
        const push = await skopeo(
          ['copy', `oci:${img.dir}:${img.tag}`, `docker://${cutter.host}/${REPO_NAME}-cut:v1`],
          { registry: reg, host: cutter.host, plainHttp: !mode.proxyTls },
        )
        assert.notEqual(push.code, 0, 'an upload through the cutting proxy fails')
        assert.ok(cutter.cuts >= 2, `cuts: ${cutter.cuts}`)
        // Manifests are never cut: the tag list answers through it.
        const tags = await registryRequest(reg, `/v2/${REPO_NAME}/tags/list`, { via: cutter.url })
        assert.equal(tags.status, 200)
      } finally {
        await cutter.stop()
      }
    })

    test('kill() SIGKILLs the registry and restart() brings it back on the same port and storage', async () => {
      const pid = reg.pid
      await reg.kill()
      assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' })
      await assert.rejects(rawRequest(`${reg.url}/v2/`, { ca: await readFile(reg.caFile), timeoutMs: 2000 }))
      await reg.restart()
      assert.notEqual(reg.pid, pid)
      const raw = await skopeo(['inspect', '--raw', ref()], { registry: reg })
      assert.equal(raw.code, 0, raw.stderr)
      assert.equal(sha256(raw.stdout), img.manifestDigest)
    })

    if (mode.opts.auth === 'token') {
      test('the token issuer grants only what was asked, only to the right user, and counts requests', async () => {
        const issuer = reg.issuer
        assert.ok(issuer)
        const ca = await readFile(reg.caFile)
        const basic = `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}`
        const token = async (scope: string, auth = basic): Promise<{ status: number; token?: string }> => {
          const url = new URL(issuer.realm)
          url.searchParams.set('service', issuer.service)
          url.searchParams.append('scope', scope)
          const res = await rawRequest(url.href, { ca, headers: { authorization: auth } })
          if (res.status !== 200) return { status: res.status }
          const body = JSON.parse(res.body.toString()) as Record<string, unknown>
          assert.equal(body.token, body.access_token)
          assert.equal(typeof body.expires_in, 'number')
          assert.ok(!Number.isNaN(Date.parse(String(body.issued_at))))
          return { status: 200, token: String(body.token) }
        }
        const before = issuer.requests
        const wrong = `Basic ${Buffer.from(`${reg.username}:nope`).toString('base64')}`
        assert.equal((await token(`repository:${REPO_NAME}:pull`, wrong)).status, 401)
        assert.equal(issuer.requests, before + 1)

        const upload = (t: string) =>
          rawRequest(`${reg.url}/v2/${REPO_NAME}/blobs/uploads/`, {
            method: 'POST',
            ca,
            headers: { authorization: `Bearer ${t}`, 'content-length': '0' },
          })
        const pullOnly = await token(`repository:${REPO_NAME}:pull`)
        assert.equal((await upload(pullOnly.token ?? '')).status, 401, 'a pull token cannot push')
        const pushToken = await token(`repository:${REPO_NAME}:pull,push`)
        assert.equal((await upload(pushToken.token ?? '')).status, 202, 'a push token can')
        const otherRepo = await token('repository:other/repo:pull,push')
        assert.equal(
          (await upload(otherRepo.token ?? '')).status,
          401,
          'a token for another repository cannot',
        )

        // A forged signature and an expired token (past distribution's 60 s leeway) are both refused.
        const [h, c] = (pushToken.token ?? '').split('.')
        const forged = `${h}.${c}.${Buffer.alloc(64, 1).toString('base64url')}`
        assert.equal((await upload(forged)).status, 401, 'forged signature')
        const ttl = issuer.ttlSeconds
        issuer.ttlSeconds = -120
        try {
          const expired = await token(`repository:${REPO_NAME}:pull,push`)
          assert.equal((await upload(expired.token ?? '')).status, 401, 'expired token')
        } finally {
          issuer.ttlSeconds = ttl
        }
        assert.ok(issuer.issued >= 4)
      })
    }

    if (mode.opts.auth === 'htpasswd') {
      test('a real dockerd trusts the CA through certs.d and pulls by digest with config.json auths', async (t) => {
        let d: Dockerd | undefined
        const untrust = await trustInDockerd(reg)
        try {
          d = await startDockerd({ name: 'reg' })
          const byDigest = `${reg.host}/${REPO_NAME}@${img.manifestDigest}`
          const anon = await d.docker(['pull', byDigest])
          assert.notEqual(anon.code, 0, 'no credentials yet')
          assert.match(anon.stderr, /no basic auth credentials|unauthorized/i)
          await writeDockerAuth(d.cliConfig, reg)
          const t0 = performance.now()
          const pull = await d.docker(['pull', byDigest])
          assert.equal(pull.code, 0, pull.stderr)
          t.diagnostic(`docker pull in ${Math.round(performance.now() - t0)} ms`)
          const inspect = await d.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', byDigest])
          assert.equal(inspect.code, 0, inspect.stderr)
          assert.deepEqual(JSON.parse(inspect.stdout), [byDigest])
        } finally {
          await d?.stop()
          await untrust()
        }
        await assert.rejects(stat(join('/etc/docker/certs.d', reg.host)), { code: 'ENOENT' })
      })
    }
  })
}
