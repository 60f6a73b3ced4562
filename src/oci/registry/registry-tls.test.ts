import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { type LocalRegistry, startRegistry } from '../../../test/helpers/registry-plain.js'
import { GrailError } from '../../errors.js'
import { MEDIA_CONFIG, MEDIA_LAYER_TAR, MEDIA_MANIFEST } from '../media-types.js'
import { openStore } from '../store.js'
import { createRegistryClient } from './client.js'
import { pullImage, pushImage } from './transfer.js'

const USER = 'grail'
const PASSWORD = `pw-${randomBytes(8).toString('hex')}`

let reg: LocalRegistry
let dir: string
let ca: string

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grail-reg-tls-'))
  const f = (n: string) => join(dir, n)
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  ossl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=grail test CA',
  )
  ossl('req', ...ec, '-keyout', f('srv.key'), '-out', f('srv.csr'), '-subj', '/CN=127.0.0.1')
  await writeFile(f('ext'), 'subjectAltName=IP:127.0.0.1\n')
  ossl(
    'x509',
    '-req',
    '-in',
    f('srv.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('srv.pem'),
    '-days',
    '1',
    '-extfile',
    f('ext'),
  )
  ca = f('ca.pem')
  await writeFile(f('htpasswd'), execFileSync('htpasswd', ['-Bbn', USER, PASSWORD]))
  reg = await startRegistry({
    tls: { certificate: f('srv.pem'), key: f('srv.key') },
    extraConfig: `auth:\n  htpasswd:\n    realm: grail-test\n    path: ${f('htpasswd')}\n`,
  })
})
after(async () => {
  await reg?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

test('real docker-registry with TLS (a CA made with openssl) and htpasswd: push and pull with basic auth', async () => {
  const a = await openStore(join(dir, 'a', 'oci'), join(dir, 'a', 'tmp'))
  const layer = await a.putBytes(randomBytes(5000))
  const config = await a.putJson(MEDIA_CONFIG, {
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
  })
  const m = await a.putJson(MEDIA_MANIFEST, {
    schemaVersion: 2,
    mediaType: MEDIA_MANIFEST,
    config,
    layers: [{ mediaType: MEDIA_LAYER_TAR, ...layer }],
  })
  const client = createRegistryClient({
    url: reg.url,
    caFile: ca,
    credentials: { kind: 'basic', username: USER, password: PASSWORD },
    retryBaseMs: 10,
  })
  try {
    await client.ping()
    const pushed = await pushImage(client, a, 'secure/app', m.digest, { tags: ['v1'] })
    assert.equal(pushed.uploaded, 2)
    const b = await openStore(join(dir, 'b', 'oci'), join(dir, 'b', 'tmp'))
    const pulled = await pullImage(client, 'secure/app', 'v1', b)
    assert.equal(pulled.digest, m.digest)
    await b.verifyBlob(layer.digest)
  } finally {
    await client.close()
  }
})

test('real docker-registry with TLS: an untrusted CA, wrong credentials and none give clear errors without the secret', async () => {
  const noCa = createRegistryClient({
    url: reg.url,
    credentials: { kind: 'basic', username: USER, password: PASSWORD },
    retries: 1,
  })
  const wrong = createRegistryClient({
    url: reg.url,
    caFile: ca,
    credentials: { kind: 'basic', username: USER, password: 'not-the-password' },
    retries: 1,
  })
  const anon = createRegistryClient({ url: reg.url, caFile: ca, retries: 1 })
  try {
    await assert.rejects(
      noCa.ping(),
      (err: unknown) =>
        err instanceof GrailError && err.code === 'REGISTRY_TLS' && err.message.includes(reg.host),
    )
    for (const c of [wrong, anon]) {
      await assert.rejects(c.listTags('secure/app'), (err: unknown) => {
        assert.ok(err instanceof GrailError && err.code === 'REGISTRY_AUTH', String(err))
        assert.equal(err.message, `registry ${reg.host} refused the credentials for repository secure/app`)
        const all = `${err.message} ${err.hint} ${err.stack} ${JSON.stringify(err)}`
        assert.ok(!all.includes('not-the-password') && !all.includes(PASSWORD))
        return true
      })
    }
  } finally {
    await Promise.all([noCa.close(), wrong.close(), anon.close()])
  }
})
