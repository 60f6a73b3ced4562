import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createSign, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { type LocalRegistry, startRegistry } from '../../../test/helpers/local-registry.js'
import { GrailError } from '../../errors.js'
import { MEDIA_CONFIG, MEDIA_LAYER_TAR, MEDIA_MANIFEST } from '../media-types.js'
import { openStore } from '../store.js'
import { createRegistryClient } from './client.js'
import { pullImage, pushImage } from './transfer.js'

// The bearer flow against the real registry (`auth: token`), with a token issuer run by the test: it checks
// a user and password and signs RS256 JWTs with a certificate made here (x5c header, in the registry's
// rootcertbundle).
const USER = 'ci'
const PASSWORD = `tok-pw-${randomBytes(6).toString('hex')}`

let reg: LocalRegistry
let issuer: Server
let dir: string
const issued: string[] = []

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url')

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grail-reg-token-'))
  const key = join(dir, 'signer.key')
  const cert = join(dir, 'signer.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=grail token signer',
    ],
    { stdio: 'pipe' },
  )
  const keyPem = await readFile(key, 'utf8')
  const certDer = (await readFile(cert, 'utf8')).replace(/-----[^-]+-----|\s/g, '')
  issuer = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x')
    if (req.headers.authorization !== `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`) {
      res.writeHead(401).end()
      return
    }
    const access = u.searchParams.getAll('scope').map((s) => {
      const [type, name, actions] = s.split(':')
      return { type, name, actions: (actions ?? '').split(',') }
    })
    const now = Math.floor(Date.now() / 1000)
    const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [certDer] }))
    const claims = b64url(
      JSON.stringify({
        iss: 'grail-test-issuer',
        sub: USER,
        aud: u.searchParams.get('service'),
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString('hex'),
        access,
      }),
    )
    const sig = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(keyPem)
    const token = `${header}.${claims}.${b64url(sig)}`
    issued.push(token)
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ access_token: token, expires_in: 300 }))
  })
  await new Promise<void>((r) => issuer.listen(0, '127.0.0.1', () => r()))
  const realm = `http://127.0.0.1:${(issuer.address() as AddressInfo).port}/token`
  reg = await startRegistry({
    extraConfig: `auth:\n  token:\n    realm: ${realm}\n    service: grail-test\n    issuer: grail-test-issuer\n    rootcertbundle: ${cert}\n`,
  })
})
after(async () => {
  await reg?.stop()
  await new Promise((r) => issuer?.close(r))
  if (dir) await rm(dir, { recursive: true, force: true })
})

test('real docker-registry behind a bearer-token issuer: push and pull; tokens reused per scope; no secret in errors', async () => {
  const a = await openStore(join(dir, 'a', 'oci'), join(dir, 'a', 'tmp'))
  const layer = await a.putBytes(randomBytes(4000))
  const config = await a.putJson(MEDIA_CONFIG, { architecture: 'amd64', os: 'linux', config: {} })
  const m = await a.putJson(MEDIA_MANIFEST, {
    schemaVersion: 2,
    mediaType: MEDIA_MANIFEST,
    config,
    layers: [{ mediaType: MEDIA_LAYER_TAR, ...layer }],
  })
  const client = createRegistryClient({
    url: reg.url,
    credentials: { kind: 'basic', username: USER, password: PASSWORD },
    retryBaseMs: 10,
  })
  const anon = createRegistryClient({ url: reg.url, retries: 1 })
  const wrong = createRegistryClient({
    url: reg.url,
    credentials: { kind: 'basic', username: USER, password: 'nope-nope' },
    retries: 1,
  })
  try {
    await pushImage(client, a, 'tok/app', m.digest, { tags: ['v1'] })
    const pushTokens = issued.length
    assert.equal(pushTokens, 2, 'one token for pull (HEADs), one for push, however many requests run at once')
    const b = await openStore(join(dir, 'b', 'oci'), join(dir, 'b', 'tmp'))
    const pulled = await pullImage(client, 'tok/app', 'v1', b)
    assert.equal(pulled.digest, m.digest)
    assert.deepEqual(await client.listTags('tok/app'), ['v1'])
    await client.deleteManifest('tok/app', m.digest)
    assert.equal(await client.headManifest('tok/app', m.digest), undefined)
    for (const c of [anon, wrong]) {
      await assert.rejects(c.getManifest('tok/app', 'v1'), (err: unknown) => {
        assert.ok(err instanceof GrailError && err.code === 'REGISTRY_AUTH', String(err))
        assert.ok(err.message.includes(reg.host) && err.message.includes('tok/app'))
        const all = `${err.message} ${err.hint} ${err.stack} ${JSON.stringify(err)}`
        for (const secret of ['nope-nope', PASSWORD, ...issued]) assert.ok(!all.includes(secret))
        return true
      })
    }
  } finally {
    await Promise.all([client.close(), anon.close(), wrong.close()])
  }
})
