import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { GrailError } from '../../errors.js'
import type { Digest } from '../digest.js'
import { isDigest, sha256 } from '../digest.js'
import { DOCKER_MANIFEST, MEDIA_INDEX, MEDIA_MANIFEST } from '../media-types.js'
import { checkManifestReference, checkRepository } from './reference.js'
import { expectStatus, headerDigest, mediaTypeOf, pull, push, readLimited } from './response.js'
import { Transport, type Response } from './transport.js'
import type { FetchedManifest, RegistryClient, RegistryClientOptions } from './types.js'
import { createUploader } from './upload.js'

export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const MANIFEST_ACCEPT = [MEDIA_MANIFEST, MEDIA_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(', ')
/** distribution refuses manifests above 4 MiB; so does Grail when reading one */
const MAX_MANIFEST = 4 * 1024 * 1024
const DEFAULT_CHUNK = 16 * 1024 * 1024

/** A distribution-spec client for one registry (see types.ts). */
export function createRegistryClient(
  opts: RegistryClientOptions,
): RegistryClient & { close(): Promise<void> } {
  const t = new Transport(opts)
  const registry = t.registry
  const chunkSize = Math.max(1, opts.chunkSize ?? DEFAULT_CHUNK)
  const v2 = (repo: string, rest: string) => `/v2/${checkRepository(repo)}/${rest}`
  const uploader = createUploader(t, chunkSize)

  const expect = (method: string, url: string, res: Response, ok: number[]) =>
    expectStatus(registry, method, url, res, ok)

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

    mountBlob: uploader.mountBlob,
    pushBlob: uploader.pushBlob,

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
