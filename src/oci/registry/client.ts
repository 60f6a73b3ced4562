import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { GrailError } from '../../errors.js'
import type { Digest } from '../digest.js'
import { isDigest, sha256 } from '../digest.js'
import { DOCKER_MANIFEST, MEDIA_INDEX, MEDIA_MANIFEST } from '../media-types.js'
import { checkManifestReference, checkRepository } from './reference.js'
import { isRetryable, type Response, RetryableError, shownPath, Transport } from './transport.js'
import type { FetchedManifest, RegistryClient, RegistryClientOptions } from './types.js'

export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const MANIFEST_ACCEPT = [MEDIA_MANIFEST, MEDIA_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(', ')
/** distribution refuses manifests above 4 MiB; so does Grail when reading one */
const MAX_MANIFEST = 4 * 1024 * 1024
const DEFAULT_CHUNK = 16 * 1024 * 1024

const pull = (repo: string) => [`repository:${repo}:pull`]
const push = (repo: string) => [`repository:${repo}:pull,push`]

/** Reads an error response's body, `{"errors":[{"code","message"}]}`, into a REGISTRY_ERROR. */
async function registryError(
  registry: string,
  method: string,
  url: string,
  res: Response,
): Promise<GrailError> {
  let detail = ''
  let codes: string[] = []
  try {
    const text = (await res.body.text()).slice(0, 64 * 1024)
    const json = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> }
    const errs = (json.errors ?? []).filter((e) => typeof e.code === 'string')
    codes = errs.map((e) => String(e.code))
    detail = errs.map((e) => `${e.code}${typeof e.message === 'string' ? `: ${e.message}` : ''}`).join('; ')
  } catch {
    // not the spec's JSON: the status says enough
  }
  const code = res.statusCode === 404 ? 'REGISTRY_NOT_FOUND' : 'REGISTRY_ERROR'
  return new GrailError(
    code,
    `registry ${registry}: ${method} ${shownPath(url)} answered ${res.statusCode}${detail ? ` (${detail})` : ''}`,
    {
      details: codes,
    },
  )
}

function mediaTypeOf(res: Response, bytes: Buffer | undefined): string {
  const ct =
    String(res.headers['content-type'] ?? '')
      .split(';')[0]
      ?.trim() ?? ''
  if (bytes !== undefined && (ct === '' || ct === 'application/json' || ct === 'application/octet-stream')) {
    try {
      const m = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType
      if (typeof m === 'string') return m
    } catch {
      // left to the caller's JSON parse
    }
  }
  return ct
}

function headerDigest(res: Response): Digest | undefined {
  const d = res.headers['docker-content-digest']
  const s = Array.isArray(d) ? d[0] : d
  return s !== undefined && isDigest(s) ? s : undefined
}

/** Reads a body of at most `max` bytes (a registry that streams forever is cut off). */
async function readLimited(res: Response, max: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = []
  let n = 0
  for await (const chunk of res.body) {
    n += (chunk as Buffer).length
    if (n > max) throw new GrailError('REGISTRY_ERROR', `${what} is larger than ${max} bytes`)
    parts.push(chunk as Buffer)
  }
  return Buffer.concat(parts)
}

/** Reads a stream into chunks of exactly `size` bytes (the last one shorter). */
async function* chunksOf(stream: NodeJS.ReadableStream, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = []
  let n = 0
  for await (const c of stream as Readable) {
    let buf = Buffer.isBuffer(c) ? c : Buffer.from(c as string)
    while (n + buf.length >= size) {
      const take = size - n
      pending.push(buf.subarray(0, take))
      yield Buffer.concat(pending)
      pending = []
      n = 0
      buf = buf.subarray(take)
    }
    if (buf.length > 0) {
      pending.push(buf)
      n += buf.length
    }
  }
  if (n > 0) yield Buffer.concat(pending)
}

/** A distribution-spec client for one registry (see types.ts). */
export function createRegistryClient(
  opts: RegistryClientOptions,
): RegistryClient & { close(): Promise<void> } {
  const t = new Transport(opts)
  const registry = t.registry
  const chunkSize = Math.max(1, opts.chunkSize ?? DEFAULT_CHUNK)
  const v2 = (repo: string, rest: string) => `/v2/${checkRepository(repo)}/${rest}`

  async function expect(method: string, url: string, res: Response, ok: number[]): Promise<void> {
    if (!ok.includes(res.statusCode)) throw await registryError(registry, method, url, res)
  }

  /** Starts an upload session: its absolute Location. */
  async function startUpload(
    repo: string,
    query = '',
  ): Promise<{ status: number; location: URL | undefined }> {
    const url = v2(repo, `blobs/uploads/${query}`)
    return t.send(
      { method: 'POST', url, scopes: push(repo), headers: { 'content-length': '0' } },
      async (res, at) => {
        await expect('POST', url, res, [201, 202])
        const loc = res.headers.location
        return { status: res.statusCode, location: loc ? new URL(String(loc), at) : undefined }
      },
    )
  }

  async function cancelUpload(repo: string, location: URL): Promise<void> {
    await t
      .send(
        { method: 'DELETE', url: location.href, scopes: push(repo), oneShot: true },
        async () => undefined,
      )
      .catch(() => undefined)
  }

  async function uploadOnce(
    repo: string,
    digest: Digest,
    size: number,
    open: () => NodeJS.ReadableStream,
    session: { location?: URL },
  ): Promise<void> {
    const started = await startUpload(repo)
    if (!started.location)
      throw new GrailError(
        'REGISTRY_ERROR',
        `registry ${registry}: the upload for ${repo} came without a Location`,
      )
    let location = started.location
    session.location = location
    const octets = { 'content-type': 'application/octet-stream' }
    if (size > chunkSize) {
      let offset = 0
      for await (const chunk of chunksOf(open(), chunkSize)) {
        const range = `${offset}-${offset + chunk.length - 1}`
        location = await t.send(
          {
            method: 'PATCH',
            url: location.href,
            scopes: push(repo),
            oneShot: true,
            headers: { ...octets, 'content-range': range, 'content-length': String(chunk.length) },
            body: () => chunk,
          },
          async (res, at) => {
            if (res.statusCode === 416) throw new RetryableError('the registry lost the upload position')
            await expect('PATCH', location.href, res, [202, 204])
            const loc = res.headers.location
            return loc ? new URL(String(loc), at) : location
          },
        )
        session.location = location
        offset += chunk.length
      }
      if (offset !== size) {
        throw new GrailError(
          'DIGEST_MISMATCH',
          `blob ${digest} has ${offset} bytes, not the ${size} its descriptor says`,
        )
      }
    }
    const put = new URL(location.href)
    put.searchParams.set('digest', digest)
    const monolithic = size <= chunkSize
    await t.send(
      {
        method: 'PUT',
        url: put.href,
        scopes: push(repo),
        oneShot: true,
        headers: { ...octets, 'content-length': String(monolithic ? size : 0) },
        body: monolithic ? () => open() : undefined,
      },
      async (res) => {
        if (res.statusCode === 400 || res.statusCode === 404) {
          // digest invalid: the bytes read were not the blob's (changed while read) — or the session is gone
          const err = await registryError(registry, 'PUT', put.href, res)
          if (res.statusCode === 404) throw new RetryableError(err.message)
          throw err
        }
        await expect('PUT', put.href, res, [201, 204])
      },
    )
    session.location = undefined
  }

  const client = {
    registry,
    close: () => t.close(),

    async ping() {
      await t.send({ method: 'GET', url: '/v2/', scopes: [] }, (res) => expect('GET', '/v2/', res, [200]))
    },

    async hasBlob(repo: string, digest: Digest) {
      const url = v2(repo, `blobs/${digest}`)
      return t.send({ method: 'HEAD', url, scopes: pull(repo), redirect: true }, async (res) => {
        if (res.statusCode === 404) return false
        await expect('HEAD', url, res, [200])
        return true
      })
    },

    async mountBlob(repo: string, digest: Digest, from: string) {
      checkRepository(from)
      const url = v2(repo, `blobs/uploads/?mount=${digest}&from=${from}`)
      const { status, location } = await t.send(
        { method: 'POST', url, scopes: [...push(repo), ...pull(from)], headers: { 'content-length': '0' } },
        async (res, at) => {
          await expect('POST', url, res, [201, 202])
          const loc = res.headers.location
          return { status: res.statusCode, location: loc ? new URL(String(loc), at) : undefined }
        },
      )
      if (status === 201) return true
      if (location) await cancelUpload(repo, location)
      return false
    },

    async pushBlob(repo: string, digest: Digest, size: number, open: () => NodeJS.ReadableStream) {
      checkRepository(repo)
      for (let attempt = 1; ; attempt++) {
        const session: { location?: URL } = {}
        try {
          await uploadOnce(repo, digest, size, open, session)
          return
        } catch (err) {
          if (session.location) await cancelUpload(repo, session.location)
          if (!isRetryable(err) || attempt >= t.maxAttempts) {
            if (err instanceof GrailError) throw err
            throw new GrailError(
              'REGISTRY_UNREACHABLE',
              `registry ${registry}: the upload of ${digest} to ${repo} failed ${attempt} times: ${(err as Error).message}`,
              {
                hint: 'check that the registry is up; the next push starts the upload again',
              },
            )
          }
          await t.backoff(attempt, err instanceof RetryableError ? err.retryAfterMs : undefined)
        }
      }
    },

    async fetchBlobTo(repo: string, digest: Digest, dest: string, expectedSize?: number) {
      const url = v2(repo, `blobs/${digest}`)
      try {
        await t.send({ method: 'GET', url, scopes: pull(repo), redirect: true }, async (res) => {
          await expect('GET', url, res, [200])
          const hash = createHash('sha256')
          let n = 0
          const out = createWriteStream(dest)
          try {
            for await (const chunk of res.body) {
              n += (chunk as Buffer).length
              if (expectedSize !== undefined && n > expectedSize) break
              hash.update(chunk as Buffer)
              if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()))
            }
          } finally {
            await new Promise<void>((resolve, reject) =>
              out.end((err?: Error | null) => (err ? reject(err) : resolve())),
            )
          }
          const got = `sha256:${hash.digest('hex')}`
          if ((expectedSize !== undefined && n !== expectedSize) || got !== digest) {
            throw new GrailError(
              'DIGEST_MISMATCH',
              `blob ${digest} from registry ${registry} (${repo}) ${expectedSize !== undefined && n !== expectedSize ? `has ${n > expectedSize ? 'more than ' : ''}${n} bytes, not ${expectedSize}` : `hashes to ${got}`}`,
              {
                hint: 'the registry, or something between it and here, served altered bytes; nothing was stored',
              },
            )
          }
        })
      } catch (err) {
        await rm(dest, { force: true })
        throw err
      }
    },

    async getManifest(repo: string, reference: string): Promise<FetchedManifest> {
      const url = v2(repo, `manifests/${checkManifestReference(reference)}`)
      return t.send(
        { method: 'GET', url, scopes: pull(repo), redirect: true, headers: { accept: MANIFEST_ACCEPT } },
        async (res) => {
          await expect('GET', url, res, [200])
          const bytes = await readLimited(
            res,
            MAX_MANIFEST,
            `the manifest ${repo}:${reference} from registry ${registry}`,
          )
          const digest = sha256(bytes)
          const claimed = isDigest(reference) ? reference : headerDigest(res)
          if (claimed !== undefined && claimed !== digest) {
            throw new GrailError(
              'DIGEST_MISMATCH',
              `manifest ${repo}@${claimed} from registry ${registry} hashes to ${digest}`,
              {
                hint: 'the registry, or something between it and here, served altered bytes; nothing was stored',
              },
            )
          }
          return { mediaType: mediaTypeOf(res, bytes), digest, bytes }
        },
      )
    },

    async headManifest(repo: string, reference: string) {
      const url = v2(repo, `manifests/${checkManifestReference(reference)}`)
      const head = await t.send(
        { method: 'HEAD', url, scopes: pull(repo), redirect: true, headers: { accept: MANIFEST_ACCEPT } },
        async (res) => {
          if (res.statusCode === 404) return null
          await expect('HEAD', url, res, [200])
          return { digest: headerDigest(res), mediaType: mediaTypeOf(res, undefined) }
        },
      )
      if (head === null) return undefined
      if (head.digest !== undefined && head.mediaType !== '')
        return { digest: head.digest, mediaType: head.mediaType }
      // no digest header: the bytes say it
      const m = await client.getManifest(repo, reference)
      return { digest: m.digest, mediaType: m.mediaType }
    },

    async putManifest(repo: string, reference: string, mediaType: string, bytes: Buffer) {
      const url = v2(repo, `manifests/${checkManifestReference(reference)}`)
      const digest = sha256(bytes)
      if (isDigest(reference) && reference !== digest) {
        throw new GrailError('DIGEST_MISMATCH', `manifest for ${repo}@${reference} hashes to ${digest}`)
      }
      const reported = await t.send(
        {
          method: 'PUT',
          url,
          scopes: push(repo),
          headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
          body: () => bytes,
        },
        async (res) => {
          await expect('PUT', url, res, [200, 201, 202, 204])
          return headerDigest(res)
        },
      )
      if (reported !== undefined && reported !== digest) {
        throw new GrailError(
          'DIGEST_MISMATCH',
          `registry ${registry} stored manifest ${repo}:${reference} as ${reported}, but its bytes hash to ${digest}`,
          {
            hint: 'the registry rewrote the manifest; Grail addresses images by the digest of their bytes',
          },
        )
      }
      return digest
    },

    async listTags(repo: string) {
      const tags: string[] = []
      let url: string | undefined = v2(repo, 'tags/list?n=1000')
      for (let page = 0; url !== undefined && page < 10_000; page++) {
        const current: string = url
        const next: string | null | undefined = await t.send(
          { method: 'GET', url: current, scopes: pull(repo) },
          async (res, at) => {
            if (res.statusCode === 404) return null
            await expect('GET', current, res, [200])
            const json = JSON.parse(
              (await readLimited(res, MAX_MANIFEST, `the tag list of ${repo}`)).toString('utf8'),
            ) as { tags?: unknown }
            if (Array.isArray(json.tags))
              tags.push(...json.tags.filter((x): x is string => typeof x === 'string'))
            const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(res.headers.link ?? ''))?.[1]
            if (link === undefined) return undefined
            const nextUrl = new URL(link, at)
            return nextUrl.origin === t.base.origin ? nextUrl.pathname + nextUrl.search : undefined
          },
        )
        if (next === null) return []
        url = next
      }
      return tags
    },

    async deleteManifest(repo: string, digest: Digest) {
      if (!isDigest(digest)) throw new GrailError('BAD_DIGEST', `"${digest}" is not a sha256 digest`)
      const url = v2(repo, `manifests/${digest}`)
      await t.send(
        { method: 'DELETE', url, scopes: [`repository:${repo}:delete`, ...push(repo)] },
        async (res) => {
          if (res.statusCode === 404) return
          if (res.statusCode === 405) {
            throw new GrailError(
              'REGISTRY_DELETE_DISABLED',
              `registry ${registry} does not allow deleting ${repo}@${digest}`,
              {
                hint: 'deletion is off on the registry: set `storage.delete.enabled: true` in its configuration (distribution) and restart it',
              },
            )
          }
          await expect('DELETE', url, res, [200, 202, 204])
        },
      )
    },
  }
  return client
}
