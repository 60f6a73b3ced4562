// An in-process stand-in for a registry, for the fault tests a real registry cannot be made to show (a 500
// on the third request, a connection cut mid-body, a redirect to another host, altered bytes). The real
// round trip is src/oci/registry/registry-real.test.ts.
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { sha256 } from '../../src/oci/digest.js'

export interface Hit {
  method: string
  path: string
  query: string
  authorization: string | undefined
  contentRange: string | undefined
}

/** Answers a request before the registry logic when it returns true. */
export type Hook = (
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
  hit: Hit,
) => boolean | Promise<boolean>

export interface FakeRegistry {
  url: string
  host: string
  hits: Hit[]
  blobs: Map<string, Buffer>
  manifests: Map<string, { type: string; bytes: Buffer }>
  hooks: Hook[]
  /** when set, /v2/ requests need `Bearer <token>` issued by /token for this user and password */
  bearer?: { user: string; password: string; tokens: Set<string>; issued: number; expiresIn?: number }
  close(): Promise<void>
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => resolve(Buffer.concat(parts)))
    req.on('error', reject)
  })
}

export async function startFakeRegistry(): Promise<FakeRegistry> {
  const uploads = new Map<string, Buffer>()
  let server: Server
  const fake: FakeRegistry = {
    url: '',
    host: '',
    hits: [],
    blobs: new Map(),
    manifests: new Map(),
    hooks: [],
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
  const err = (res: ServerResponse, status: number, code: string, message: string) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ errors: [{ code, message }] }))
  }
  server = createServer(async (req, res) => {
    const u = new URL(req.url ?? '/', 'http://x')
    const hit: Hit = {
      method: req.method ?? '',
      path: u.pathname,
      query: u.search,
      authorization: req.headers.authorization,
      contentRange: req.headers['content-range'] as string | undefined,
    }
    fake.hits.push(hit)
    const body = await readBody(req).catch(() => Buffer.alloc(0))
    for (const hook of fake.hooks) if (await hook(req, res, body, hit)) return
    const b = fake.bearer
    if (b && u.pathname === '/token') {
      const want = `Basic ${Buffer.from(`${b.user}:${b.password}`).toString('base64')}`
      if (req.headers.authorization !== want) return err(res, 401, 'UNAUTHORIZED', 'bad credentials')
      const token = randomBytes(8).toString('hex')
      b.tokens.add(token)
      b.issued++
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ token, expires_in: b.expiresIn ?? 300 }))
      return
    }
    if (b) {
      const got = (req.headers.authorization ?? '').replace(/^Bearer /, '')
      if (!b.tokens.has(got)) {
        res.setHeader(
          'www-authenticate',
          `Bearer realm="${fake.url}/token",service="fake",scope="repository:x:pull"`,
        )
        return err(res, 401, 'UNAUTHORIZED', 'authentication required')
      }
    }
    const m =
      /^\/v2\/(.+?)\/(blobs\/uploads\/?(.*)|blobs\/(sha256:[a-f0-9]{64})|manifests\/(.+)|tags\/list)$/.exec(
        u.pathname,
      )
    if (u.pathname === '/v2/') return res.end('{}')
    if (!m) return err(res, 404, 'NOT_FOUND', 'no route')
    const [, repoMatch, , uploadId, blob, ref] = m
    const repo = repoMatch as string
    if (blob !== undefined) {
      const data = fake.blobs.get(blob)
      if (!data) return err(res, 404, 'BLOB_UNKNOWN', 'blob unknown')
      res.writeHead(200, { 'content-length': data.length, 'docker-content-digest': blob })
      return res.end(req.method === 'HEAD' ? undefined : data)
    }
    if (ref !== undefined) {
      if (req.method === 'PUT') {
        const digest = sha256(body)
        const entry = { type: String(req.headers['content-type']), bytes: body }
        fake.manifests.set(`${repo}:${ref}`, entry)
        fake.manifests.set(`${repo}:${digest}`, entry)
        res.writeHead(201, { 'docker-content-digest': digest, location: `/v2/${repo}/manifests/${digest}` })
        return res.end()
      }
      const e = fake.manifests.get(`${repo}:${ref}`)
      if (!e) return err(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown')
      if (req.method === 'DELETE') {
        fake.manifests.delete(`${repo}:${ref}`)
        res.writeHead(202)
        return res.end()
      }
      res.writeHead(200, {
        'content-type': e.type,
        'docker-content-digest': sha256(e.bytes),
        'content-length': e.bytes.length,
      })
      return res.end(req.method === 'HEAD' ? undefined : e.bytes)
    }
    if (u.pathname.endsWith('/tags/list')) {
      const tags = [...fake.manifests.keys()]
        .filter((k) => k.startsWith(`${repo}:`) && !k.includes('sha256:'))
        .map((k) => k.slice(repo.length + 1))
        .sort()
      const last = u.searchParams.get('last')
      const rest = last ? tags.filter((t) => t > last) : tags
      const page = rest.slice(0, 2)
      if (rest.length > 2) res.setHeader('link', `</v2/${repo}/tags/list?n=2&last=${page[1]}>; rel="next"`)
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end(JSON.stringify({ name: repo, tags: page }))
    }
    // uploads
    if (req.method === 'POST') {
      const id = randomBytes(6).toString('hex')
      uploads.set(id, Buffer.alloc(0))
      res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${id}?_state=secretstate`, range: '0-0' })
      return res.end()
    }
    const id = uploadId ?? ''
    const have = uploads.get(id)
    if (!have) return err(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'upload unknown')
    if (req.method === 'DELETE') {
      uploads.delete(id)
      res.writeHead(204)
      return res.end()
    }
    const data = Buffer.concat([have, body])
    uploads.set(id, data)
    if (req.method === 'PATCH') {
      res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${id}`, range: `0-${data.length - 1}` })
      return res.end()
    }
    const digest = u.searchParams.get('digest') ?? ''
    if (sha256(data) !== digest) return err(res, 400, 'DIGEST_INVALID', 'digest did not match content')
    uploads.delete(id)
    fake.blobs.set(digest, data)
    res.writeHead(201, { location: `/v2/${repo}/blobs/${digest}`, 'docker-content-digest': digest })
    res.end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as AddressInfo).port
  fake.host = `127.0.0.1:${port}`
  fake.url = `http://${fake.host}`
  return fake
}
