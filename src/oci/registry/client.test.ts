import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, afterEach, before, beforeEach, test } from 'node:test'
import { type FakeRegistry, startFakeRegistry } from '../../../test/helpers/fake-registry.js'
import { GrailError } from '../../errors.js'
import { sha256 } from '../digest.js'
import { MEDIA_MANIFEST } from '../media-types.js'
import { createRegistryClient } from './client.js'

let fake: FakeRegistry
let tmp: string
const clients: Array<{ close(): Promise<void> }> = []

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'grail-reg-client-'))
})
after(async () => {
  await rm(tmp, { recursive: true, force: true })
})
beforeEach(async () => {
  fake = await startFakeRegistry()
})
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
  await fake.close()
})

function client(extra: Partial<Parameters<typeof createRegistryClient>[0]> = {}) {
  const c = createRegistryClient({ url: fake.url, retryBaseMs: 5, ...extra })
  clients.push(c)
  return c
}

const isCode = (code: string) => (err: unknown) => err instanceof GrailError && err.code === code

test('fake registry: 500 and 429 (with Retry-After) are retried, then the request succeeds', async () => {
  const bytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_MANIFEST, config: {}, layers: [] }),
  )
  fake.manifests.set('a:v1', { type: MEDIA_MANIFEST, bytes })
  let n = 0
  fake.hooks.push((_req, res, _b, hit) => {
    if (!hit.path.includes('/manifests/')) return false
    n++
    if (n === 1) {
      res.writeHead(500).end()
      return true
    }
    if (n === 2) {
      res.writeHead(429, { 'retry-after': '0' }).end()
      return true
    }
    return false
  })
  const m = await client().getManifest('a', 'v1')
  assert.equal(m.digest, sha256(bytes))
  assert.equal(m.mediaType, MEDIA_MANIFEST)
  assert.equal(n, 3)
})

test('fake registry: 5xx for ever gives REGISTRY_UNREACHABLE after the configured attempts', async () => {
  fake.hooks.push((_req, res) => {
    res.writeHead(503).end()
    return true
  })
  await assert.rejects(
    client({ retries: 3 }).hasBlob('a', sha256('x')),
    (err: unknown) => isCode('REGISTRY_UNREACHABLE')(err) && /127\.0\.0\.1/.test((err as Error).message),
  )
  assert.equal(fake.hits.length, 3)
})

test('fake registry: a connection reset mid-body is retried with a fresh file; the blob is whole', async () => {
  const data = randomBytes(200_000)
  const digest = sha256(data)
  fake.blobs.set(digest, data)
  let cut = false
  fake.hooks.push((req, res, _b, hit) => {
    if (cut || hit.method !== 'GET' || !hit.path.includes('/blobs/')) return false
    cut = true
    res.writeHead(200, { 'content-length': data.length })
    res.write(data.subarray(0, 50_000), () => req.socket.destroy())
    return true
  })
  const dest = join(tmp, 'reset.blob')
  await client().fetchBlobTo('a', digest, dest, data.length)
  assert.ok(cut)
  assert.ok((await readFile(dest)).equals(data))
  await rm(dest)
})

test('fake registry: altered bytes while streaming give DIGEST_MISMATCH naming digest and registry; dest removed', async () => {
  const data = randomBytes(100_000)
  const digest = sha256(data)
  const altered = Buffer.from(data)
  altered[70_000] = (altered[70_000] as number) ^ 1
  fake.blobs.set(digest, altered)
  const dest = join(tmp, 'altered.blob')
  await assert.rejects(
    client().fetchBlobTo('a', digest, dest, data.length),
    (err: unknown) =>
      isCode('DIGEST_MISMATCH')(err) &&
      (err as Error).message.includes(digest) &&
      (err as Error).message.includes(fake.host),
  )
  assert.equal(existsSync(dest), false)
  // longer than the descriptor says: cut off, refused, removed
  fake.blobs.set(digest, Buffer.concat([data, Buffer.from('more')]))
  await assert.rejects(client().fetchBlobTo('a', digest, dest, data.length), isCode('DIGEST_MISMATCH'))
  assert.equal(existsSync(dest), false)
  // a manifest whose bytes are not the digest asked for
  const bytes = Buffer.from('{"schemaVersion":2}')
  fake.manifests.set(`a:${digest}`, { type: MEDIA_MANIFEST, bytes })
  await assert.rejects(client().getManifest('a', digest), isCode('DIGEST_MISMATCH'))
})

test('fake registry: bearer challenge flow, token cached per scope, wrong password is REGISTRY_AUTH without the secret', async () => {
  const password = 'hunter2-very-secret'
  fake.bearer = { user: 'u', password, tokens: new Set(), issued: 0 }
  const data = Buffer.from('blob')
  fake.blobs.set(sha256(data), data)
  const c = client({ credentials: { kind: 'basic', username: 'u', password } })
  await c.ping()
  assert.equal(await c.hasBlob('a', sha256(data)), true)
  assert.equal(await c.hasBlob('a', sha256('nope')), false)
  assert.equal(await c.hasBlob('a', sha256(data)), true)
  // one token for /v2/ (no scope), one for repository:a:pull, reused
  assert.equal(fake.bearer.issued, 2)
  const tokenRequests = fake.hits.filter((h) => h.path === '/token')
  assert.equal(tokenRequests.length, 2)
  assert.match(tokenRequests[1]?.query ?? '', /scope=repository%3Aa%3Apull/)
  // a push scope is another token
  await c.pushBlob('b', sha256('new'), 3, () => Readable.from([Buffer.from('new')]))
  assert.equal(fake.bearer.issued, 3)
  assert.ok(fake.blobs.has(sha256('new')))

  const bad = client({ credentials: { kind: 'basic', username: 'u', password: 'wrong-password-xyz' } })
  await assert.rejects(bad.hasBlob('team/app', sha256(data)), (err: unknown) => {
    assert.ok(isCode('REGISTRY_AUTH')(err))
    const e = err as GrailError
    assert.match(
      e.message,
      new RegExp(
        `registry ${fake.host.replace(/\./g, '\\.')} refused the credentials for repository team/app`,
      ),
    )
    const all = `${e.message} ${e.hint} ${e.stack} ${JSON.stringify(e)} ${String(e.cause)}`
    assert.ok(!all.includes('wrong-password-xyz'))
    assert.ok(!all.includes(Buffer.from('u:wrong-password-xyz').toString('base64')))
    return true
  })
  // anonymous against an auth registry: REGISTRY_AUTH too, with a hint on where credentials come from
  await assert.rejects(
    client().ping(),
    (err: unknown) => isCode('REGISTRY_AUTH')(err) && /auth/.test((err as GrailError).hint ?? ''),
  )
})

test('fake registry: an expired token is fetched again', async () => {
  fake.bearer = { user: 'u', password: 'p', tokens: new Set(), issued: 0, expiresIn: 1 }
  const c = client({ credentials: { kind: 'basic', username: 'u', password: 'p' } })
  await c.hasBlob('a', sha256('x'))
  await c.hasBlob('a', sha256('x'))
  assert.equal(fake.bearer.issued, 1)
  // renewed a little before expires_in runs out (half of it, for a short one)
  await new Promise((r) => setTimeout(r, 600))
  await c.hasBlob('a', sha256('x'))
  assert.equal(fake.bearer.issued, 2)
})

test('fake registry: a blob redirect to another host is followed without Authorization', async () => {
  const data = randomBytes(1000)
  const digest = sha256(data)
  const seen: Array<string | undefined> = []
  const cdn = createServer((req, res) => {
    seen.push(req.headers.authorization)
    res.writeHead(200, { 'content-length': data.length }).end(data)
  })
  await new Promise<void>((r) => cdn.listen(0, '127.0.0.1', () => r()))
  const cdnUrl = `http://localhost:${(cdn.address() as AddressInfo).port}`
  try {
    fake.hooks.push((_req, res, _b, hit) => {
      if (hit.method !== 'GET' || !hit.path.includes('/blobs/')) return false
      // a relative hop first, then to the other host
      if (!hit.query.includes('hop')) res.writeHead(307, { location: `${hit.path}?hop=1` }).end()
      else res.writeHead(302, { location: `${cdnUrl}/blob?sig=abc` }).end()
      return true
    })
    const dest = join(tmp, 'redirect.blob')
    await client({ credentials: { kind: 'basic', username: 'u', password: 'p' } }).fetchBlobTo(
      'a',
      digest,
      dest,
    )
    // the registry asked for nothing, so no credentials were sent anywhere; now with Basic in use
    fake.hooks.unshift((req, res, _b, hit) => {
      if (hit.path === '/v2/' && !req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end()
        return true
      }
      return false
    })
    const c = client({ credentials: { kind: 'basic', username: 'u', password: 'p' } })
    await c.ping()
    await c.fetchBlobTo('a', digest, dest)
    assert.ok(
      fake.hits.some((h) => h.authorization?.startsWith('Basic ')),
      'the registry got the credentials',
    )
    assert.deepEqual(seen, [undefined, undefined], 'the other host never did')
    assert.ok((await readFile(dest)).equals(data))
    await rm(dest)
    // too many redirects
    fake.hooks.unshift((_req, res, _b, hit) => {
      if (!hit.path.includes('/blobs/')) return false
      res.writeHead(302, { location: hit.path }).end()
      return true
    })
    await assert.rejects(c.fetchBlobTo('a', digest, dest), isCode('REGISTRY_ERROR'))
    assert.equal(existsSync(dest), false)
  } finally {
    await new Promise((r) => cdn.close(r))
  }
})

test('fake registry: a blob above chunkSize goes up in PATCH chunks with Content-Range, then PUT ?digest=', async () => {
  const data = randomBytes(25_000)
  const digest = sha256(data)
  await client({ chunkSize: 10_000 }).pushBlob('a', digest, data.length, () =>
    Readable.from([data.subarray(0, 3), data.subarray(3)]),
  )
  assert.ok(fake.blobs.get(digest)?.equals(data))
  const patches = fake.hits.filter((h) => h.method === 'PATCH')
  assert.deepEqual(
    patches.map((h) => h.contentRange),
    ['0-9999', '10000-19999', '20000-24999'],
  )
  const put = fake.hits.find((h) => h.method === 'PUT')
  assert.match(put?.query ?? '', /digest=sha256%3A/)
  // at or below the chunk size: one monolithic PUT
  fake.hits.length = 0
  const small = randomBytes(10_000)
  await client({ chunkSize: 10_000 }).pushBlob('a', sha256(small), small.length, () => Readable.from([small]))
  assert.deepEqual(
    fake.hits.map((h) => h.method),
    ['POST', 'PUT'],
  )
})

test('fake registry: an upload cut mid-way starts again with a new session; the old one is cancelled', async () => {
  const data = randomBytes(30_000)
  const digest = sha256(data)
  let cuts = 0
  fake.hooks.push((req, _res, _b, hit) => {
    if (hit.method === 'PATCH' && hit.contentRange === '10000-19999' && cuts === 0) {
      cuts++
      req.socket.destroy()
      return true
    }
    return false
  })
  let opened = 0
  await client({ chunkSize: 10_000 }).pushBlob('a', digest, data.length, () => {
    opened++
    return Readable.from([data])
  })
  assert.equal(cuts, 1)
  assert.equal(opened, 2)
  assert.ok(fake.blobs.get(digest)?.equals(data))
  const methods = fake.hits.map((h) => h.method)
  assert.equal(methods.filter((m) => m === 'POST').length, 2)
  assert.equal(methods.filter((m) => m === 'DELETE').length, 1, 'the cut session is cancelled')
  // bytes that do not hash to the digest are refused, not retried as a success
  await assert.rejects(
    client().pushBlob('a', sha256('other'), data.length, () => Readable.from([data])),
    (err: unknown) =>
      isCode('REGISTRY_ERROR')(err) &&
      /DIGEST_INVALID/.test((err as Error).message) &&
      !(err as Error).message.includes('secretstate'),
  )
})

test('fake registry: errors carry the registry code and message and a path without its query', async () => {
  fake.hooks.push((_req, res, _b, hit) => {
    if (hit.method !== 'PUT') return false
    res.writeHead(400, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid' }] }))
    return true
  })
  await assert.rejects(client().putManifest('a', 'v1', MEDIA_MANIFEST, Buffer.from('{}')), (err: unknown) => {
    assert.ok(isCode('REGISTRY_ERROR')(err))
    assert.equal(
      (err as Error).message,
      `registry ${fake.host}: PUT /v2/a/manifests/v1 answered 400 (MANIFEST_INVALID: manifest invalid)`,
    )
    return true
  })
  fake.hooks.unshift((_req, res, _b, hit) => {
    if (hit.method !== 'DELETE') return false
    res.writeHead(405).end()
    return true
  })
  await assert.rejects(
    client().deleteManifest('a', sha256('x')),
    (err: unknown) =>
      isCode('REGISTRY_DELETE_DISABLED')(err) &&
      /storage\.delete\.enabled: true/.test((err as GrailError).hint ?? ''),
  )
})

test('fake registry: tags are listed across Link pages; a manifest PUT returns the digest of its bytes', async () => {
  const c = client()
  const bytes = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}')
  for (const t of ['a', 'b', 'c', 'd', 'e'])
    assert.equal(await c.putManifest('r', t, MEDIA_MANIFEST, bytes), sha256(bytes))
  assert.deepEqual(await c.listTags('r'), ['a', 'b', 'c', 'd', 'e'])
  assert.deepEqual(await c.headManifest('r', 'c'), { digest: sha256(bytes), mediaType: MEDIA_MANIFEST })
  assert.equal(await c.headManifest('r', 'zz'), undefined)
})

test('plain http is refused for a host that is not loopback, unless insecure', () => {
  assert.throws(
    () => createRegistryClient({ url: 'http://registry.example.com' }),
    (err: unknown) =>
      isCode('REGISTRY_INSECURE')(err) &&
      /registry\.example\.com/.test((err as Error).message) &&
      /insecure: true/.test((err as GrailError).hint ?? ''),
  )
  for (const url of [
    'http://127.0.0.2:5000',
    'http://localhost:5000',
    'http://[::1]:5000',
    'https://registry.example.com',
  ]) {
    clients.push(createRegistryClient({ url }))
  }
  clients.push(createRegistryClient({ url: 'http://registry.example.com', insecure: true }))
  assert.throws(() => createRegistryClient({ url: 'ftp://x.y' }), isCode('REGISTRY_REF_INVALID'))
})
