import type { Readable } from 'node:stream'
import { GrailError } from '../../errors.js'
import type { Digest } from '../digest.js'
import { checkRepository } from './reference.js'
import { expectStatus, push, pull, registryError } from './response.js'
import { isRetryable, RetryableError, type Response, type Transport } from './transport.js'

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

/**
 * Blob uploads and mounts. An upload is POST then PUT ?digest= (monolithic) or PATCH chunks with
 * Content-Range then PUT; any retryable failure on the way cancels the session (DELETE, best effort) and
 * starts the whole upload again from a fresh stream and a new session.
 */
export function createUploader(t: Transport, chunkSize: number) {
  const registry = t.registry
  const v2 = (repo: string, rest: string) => `/v2/${checkRepository(repo)}/${rest}`
  const expect = (method: string, url: string, res: Response, ok: number[]) =>
    expectStatus(registry, method, url, res, ok)

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

  return {
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
  }
}
