/**
 * SHIM (branch reg-cache only): stands in for the lead's `src/lifecycle/registry/connect.ts` and the
 * reg-client branch's `createRegistryClient` until they land. Same shapes (`Registry`, `connectRegistry`),
 * so swapping is an import change in cache.ts, registry-gc.ts and cli/commands/{build,lifecycle}.ts.
 * The client here speaks plain distribution-spec over fetch: anonymous or basic auth from the env
 * source only, monolithic uploads, no retries, no bearer flow. Not for production use.
 */
import { createWriteStream } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createHash } from 'node:crypto'
import { GrailError } from '../../errors.js'
import type { Digest } from '../../oci/digest.js'
import { sha256 } from '../../oci/digest.js'
import type { FetchedManifest, RegistryClient } from '../../oci/registry/types.js'
import type { RegistrySpec } from '../../spec/types.js'

export interface Registry {
  spec: RegistrySpec
  client: RegistryClient
  /** `${prefix}/${image}` */
  repository(image: string): string
  secrets: string[]
}

const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ')

function shimClient(spec: RegistrySpec, authHeader: string | undefined): RegistryClient {
  const base = spec.url.replace(/\/+$/, '')
  const req = async (method: string, path: string, init: RequestInit = {}): Promise<Response> => {
    const url = path.startsWith('http') ? path : `${base}${path}`
    let res: Response
    try {
      res = await fetch(url, {
        ...init,
        method,
        headers: { ...(authHeader ? { authorization: authHeader } : {}), ...(init.headers ?? {}) },
        ...(init.body instanceof Readable ? { duplex: 'half' } : {}),
      } as RequestInit)
    } catch (err) {
      throw new GrailError('REGISTRY_UNREACHABLE', `${spec.host}: ${(err as Error).message}`, {
        hint: 'check the URL and that it runs',
      })
    }
    if (res.status === 401 || res.status === 403)
      throw new GrailError('REGISTRY_AUTH', `${spec.host} refused the credentials (${res.status})`)
    return res
  }
  const fail = async (res: Response, what: string): Promise<never> => {
    const text = await res.text().catch(() => '')
    if (res.status === 404) throw new GrailError('REGISTRY_NOT_FOUND', `${spec.host}: ${what}: not found`)
    if (res.status === 405)
      throw new GrailError('REGISTRY_DELETE_DISABLED', `${spec.host}: ${what}: deleting is disabled`, {
        hint: 'set `storage.delete.enabled: true` in the registry config (REGISTRY_STORAGE_DELETE_ENABLED=true)',
      })
    throw new GrailError('REGISTRY_ERROR', `${spec.host}: ${what}: ${res.status} ${text.slice(0, 200)}`)
  }
  return {
    registry: spec.host,
    async ping() {
      const res = await req('GET', '/v2/')
      if (!res.ok) await fail(res, 'GET /v2/')
    },
    async hasBlob(repo, digest) {
      const res = await req('HEAD', `/v2/${repo}/blobs/${digest}`)
      if (res.status === 404) return false
      if (!res.ok) await fail(res, `HEAD blob ${digest}`)
      return true
    },
    async mountBlob() {
      return false
    },
    async pushBlob(repo, digest, size, open) {
      const start = await req('POST', `/v2/${repo}/blobs/uploads/`)
      if (start.status !== 202) await fail(start, `POST upload ${repo}`)
      const loc = new URL(start.headers.get('location') ?? '', `${base}/`)
      loc.searchParams.set('digest', digest)
      const chunks: Buffer[] = []
      for await (const c of open() as AsyncIterable<Buffer>) chunks.push(Buffer.from(c))
      const body = Buffer.concat(chunks)
      if (body.length !== size || sha256(body) !== digest)
        throw new GrailError('DIGEST_MISMATCH', `blob ${digest}: the bytes to push do not match`)
      const put = await req('PUT', loc.toString(), {
        body,
        headers: { 'content-type': 'application/octet-stream' },
      })
      if (put.status !== 201) await fail(put, `PUT blob ${digest}`)
    },
    async fetchBlobTo(repo, digest, dest, expectedSize) {
      const res = await req('GET', `/v2/${repo}/blobs/${digest}`)
      if (!res.ok || !res.body) return fail(res, `GET blob ${digest}`)
      const hash = createHash('sha256')
      let size = 0
      const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream)
      body.on('data', (c: Buffer) => {
        hash.update(c)
        size += c.length
      })
      await pipeline(body, createWriteStream(dest))
      const got = `sha256:${hash.digest('hex')}`
      if (got !== digest || (expectedSize !== undefined && size !== expectedSize)) {
        await rm(dest, { force: true })
        throw new GrailError('DIGEST_MISMATCH', `blob ${digest} from ${spec.host} hashes to ${got}`)
      }
    },
    async getManifest(repo, reference): Promise<FetchedManifest> {
      const res = await req('GET', `/v2/${repo}/manifests/${reference}`, { headers: { accept: ACCEPT } })
      if (!res.ok) return fail(res, `GET manifest ${repo}:${reference}`)
      const bytes = Buffer.from(await res.arrayBuffer())
      const digest = sha256(bytes)
      if (reference.startsWith('sha256:') && digest !== reference)
        throw new GrailError('DIGEST_MISMATCH', `manifest ${reference} hashes to ${digest}`)
      return { mediaType: res.headers.get('content-type') ?? '', digest, bytes }
    },
    async headManifest(repo, reference) {
      const res = await req('HEAD', `/v2/${repo}/manifests/${reference}`, { headers: { accept: ACCEPT } })
      if (res.status === 404) return undefined
      if (!res.ok) return fail(res, `HEAD manifest ${repo}:${reference}`)
      return {
        digest: (res.headers.get('docker-content-digest') ?? '') as Digest,
        mediaType: res.headers.get('content-type') ?? '',
      }
    },
    async putManifest(repo, reference, mediaType, bytes) {
      const res = await req('PUT', `/v2/${repo}/manifests/${reference}`, {
        body: bytes,
        headers: { 'content-type': mediaType },
      })
      if (res.status !== 201) await fail(res, `PUT manifest ${repo}:${reference}`)
      return sha256(bytes)
    },
    async listTags(repo) {
      const res = await req('GET', `/v2/${repo}/tags/list`)
      if (res.status === 404)
        throw new GrailError('REGISTRY_NOT_FOUND', `${spec.host}/${repo}: no such repository`)
      if (!res.ok) return fail(res, `GET tags ${repo}`)
      return ((await res.json()) as { tags: string[] | null }).tags ?? []
    },
    async deleteManifest(repo, digest) {
      const res = await req('DELETE', `/v2/${repo}/manifests/${digest}`)
      if (res.status !== 202) await fail(res, `DELETE manifest ${repo}@${digest}`)
    },
  }
}

/** SHIM of the lead's connectRegistry: anonymous, or basic from the `env` auth source. */
export async function connectRegistry(spec: RegistrySpec): Promise<Registry> {
  let header: string | undefined
  const secrets: string[] = []
  if (spec.auth.kind === 'env') {
    const user = process.env[spec.auth.username]
    const pass = process.env[spec.auth.password]
    if (user === undefined || pass === undefined)
      throw new GrailError(
        'REGISTRY_CREDENTIALS',
        `${spec.host}: ${spec.auth.username} or ${spec.auth.password} is not set`,
      )
    header = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
    secrets.push(pass)
  }
  return {
    spec,
    client: shimClient(spec, header),
    repository: (image) => `${spec.prefix}/${image}`,
    secrets,
  }
}

/**
 * SHIM of the lead's `pushImages` (src/lifecycle/registry/push.ts): each image's config and layers (what
 * the registry has is skipped), then its manifest tagged `v<version>`.
 */
export async function pushImages(
  registry: Registry,
  store: import('../../oci/store.js').OciStore,
  _db: import('../../state/index.js').Db,
  images: ReadonlyArray<import('../../state/index.js').ImageRecord>,
  _opts: { onEvent?: (e: import('../../oci/registry/types.js').TransferEvent) => void } = {},
): Promise<Array<{ name: string; version: number; digest: Digest; reference: string }>> {
  const out: Array<{ name: string; version: number; digest: Digest; reference: string }> = []
  for (const rec of images) {
    const repo = registry.repository(rec.name)
    const bytes = await readFile(store.blobPath(rec.digest))
    const manifest = JSON.parse(bytes.toString('utf8')) as import('../../oci/types.js').Manifest
    for (const d of [manifest.config, ...manifest.layers]) {
      if (await registry.client.hasBlob(repo, d.digest)) continue
      await registry.client.pushBlob(repo, d.digest, d.size, () => store.openBlob(d.digest))
    }
    await registry.client.putManifest(repo, `v${rec.version}`, manifest.mediaType, bytes)
    out.push({
      name: rec.name,
      version: rec.version,
      digest: rec.digest,
      reference: `${registry.client.registry}/${repo}:v${rec.version}`,
    })
  }
  return out
}
