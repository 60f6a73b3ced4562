import { randomBytes } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { GrailError, isErrno } from '../errors.js'
import { renameDurably, writeAtomic } from '../util/write-atomic.js'
import { canonicalJson } from './canonical-json.js'
import type { Digest } from './digest.js'
import { digestHex, sha256, sha256File } from './digest.js'
import { MEDIA_INDEX } from './media-types.js'
import type { Descriptor, ImageIndex } from './types.js'

/**
 * An OCI image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/…`). Every write goes to a temp
 * file, is hashed, and is renamed into place only when the digest matches; an existing blob is verified
 * and kept, unless it no longer hashes to its name, and then the verified new bytes replace it. Reads of JSON blobs are verified too, so a corrupted store is noticed, not trusted.
 */
export interface OciStore {
  readonly root: string
  readonly tmpDir: string
  blobPath(digest: Digest): string
  hasBlob(digest: Digest): boolean
  putBytes(data: Buffer | string, expected?: Digest): Promise<{ digest: Digest; size: number }>
  putJson(mediaType: string, value: unknown): Promise<Descriptor>
  adoptFile(tmpPath: string, expected?: Digest): Promise<{ digest: Digest; size: number }>
  readJson<T>(digest: Digest): Promise<T>
  openBlob(digest: Digest): NodeJS.ReadableStream
  verifyBlob(digest: Digest): Promise<void>
  tmpPath(label: string): string
  readIndex(): Promise<ImageIndex>
  writeIndex(manifests: Descriptor[]): Promise<void>
}

/** Opens (creating if needed) an image layout at `root`; temp files live in `tmpDir` on the same filesystem. */
export async function openStore(root: string, tmpDir: string): Promise<OciStore> {
  await mkdir(join(root, 'blobs', 'sha256'), { recursive: true })
  await mkdir(tmpDir, { recursive: true })
  // first writer wins: a second process opening the store at the same time never replaces a real index
  const create = (name: string, text: string) =>
    writeAtomic(join(root, name), text, { exclusive: true }).catch((err: unknown) => {
      if (!isErrno(err, 'EEXIST')) throw err
    })
  if (!existsSync(join(root, 'oci-layout'))) await create('oci-layout', '{"imageLayoutVersion":"1.0.0"}')
  if (!existsSync(join(root, 'index.json'))) {
    await create('index.json', canonicalJson({ schemaVersion: 2, mediaType: MEDIA_INDEX, manifests: [] }))
  }

  const blobPath = (digest: Digest) => join(root, 'blobs', 'sha256', digestHex(digest))
  const tmpPath = (label: string) => join(tmpDir, `${label}-${process.pid}-${randomBytes(6).toString('hex')}`)

  async function adoptFile(tmp: string, expected?: Digest): Promise<{ digest: Digest; size: number }> {
    const { digest, size } = await sha256File(tmp)
    if (expected && expected !== digest) {
      await rm(tmp, { force: true })
      throw new GrailError(
        'DIGEST_MISMATCH',
        `content was expected to be ${expected} but hashes to ${digest}`,
        {
          hint: 'the source is corrupt or was changed while being read; retry, and check the source',
        },
      )
    }
    const dest = blobPath(digest)
    if (existsSync(dest) && (await blobIsSound(digest))) {
      await rm(tmp, { force: true })
    } else {
      // missing, or corrupt on disk: the verified new bytes take its place (fsynced: gc and the
      // next build trust a blob that is there)
      await renameDurably(tmp, dest)
    }
    return { digest, size }
  }

  async function blobIsSound(digest: Digest): Promise<boolean> {
    try {
      await verifyBlob(digest)
      return true
    } catch (err) {
      if (err instanceof GrailError && (err.code === 'BLOB_CORRUPT' || err.code === 'BLOB_MISSING'))
        return false
      throw err
    }
  }

  async function verifyBlob(digest: Digest): Promise<void> {
    const path = blobPath(digest)
    let actual: Digest
    try {
      actual = (await sha256File(path)).digest
    } catch (err) {
      if (isErrno(err, 'ENOENT')) {
        throw new GrailError('BLOB_MISSING', `blob ${digest} is missing from ${root}`, {
          hint: '`grail build` rebuilds the missing blobs of the images grail.yaml builds',
        })
      }
      throw err
    }
    if (actual !== digest) {
      throw new GrailError('BLOB_CORRUPT', `blob ${path} hashes to ${actual}, not ${digest}`, {
        hint: '`grail build` replaces the corrupt blobs of the images grail.yaml builds',
      })
    }
  }

  async function putBytes(data: Buffer | string, expected?: Digest) {
    const digest = sha256(data)
    if (expected && expected !== digest) {
      throw new GrailError(
        'DIGEST_MISMATCH',
        `content was expected to be ${expected} but hashes to ${digest}`,
      )
    }
    if (existsSync(blobPath(digest)) && (await blobIsSound(digest))) {
      return { digest, size: Buffer.byteLength(data) }
    }
    const tmp = tmpPath('blob')
    try {
      await writeFile(tmp, data)
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
    return adoptFile(tmp, digest)
  }

  return {
    root,
    tmpDir,
    blobPath,
    tmpPath,
    hasBlob: (digest) => existsSync(blobPath(digest)),
    putBytes,
    async putJson(mediaType, value) {
      const { digest, size } = await putBytes(canonicalJson(value))
      return { mediaType, digest, size }
    },
    adoptFile,
    async readJson<T>(digest: Digest): Promise<T> {
      let data: Buffer
      try {
        data = await readFile(blobPath(digest))
      } catch (err) {
        if (isErrno(err, 'ENOENT')) {
          throw new GrailError('BLOB_MISSING', `blob ${digest} is missing from ${root}`, {
            hint: '`grail build` rebuilds the missing blobs of the images grail.yaml builds',
          })
        }
        throw err
      }
      if (sha256(data) !== digest) {
        throw new GrailError('BLOB_CORRUPT', `blob ${blobPath(digest)} does not match its digest`, {
          hint: '`grail build` replaces the corrupt blobs of the images grail.yaml builds',
        })
      }
      return JSON.parse(data.toString('utf8')) as T
    },
    openBlob: (digest) => createReadStream(blobPath(digest)),
    verifyBlob,
    async readIndex() {
      return JSON.parse(await readFile(join(root, 'index.json'), 'utf8')) as ImageIndex
    },
    async writeIndex(manifests) {
      // atomic: readers (skopeo, a killed gc's successor) see the old index or the new one
      await writeAtomic(
        join(root, 'index.json'),
        canonicalJson({ schemaVersion: 2, mediaType: MEDIA_INDEX, manifests }),
      )
    },
  }
}

/** Size in bytes of a stored blob. */
export async function blobSize(store: OciStore, digest: Digest): Promise<number> {
  return (await stat(store.blobPath(digest))).size
}

/**
 * Marks a reused blob as in use: gc leaves blobs touched within its grace period alone. A blob that is
 * missing has nothing to protect (the build that needs it finds it missing); any other failure (EPERM,
 * EROFS) is thrown, since a gc running now would take the blob as unused.
 */
export async function touchBlob(store: OciStore, digest: Digest): Promise<void> {
  const now = new Date()
  try {
    await utimes(store.blobPath(digest), now, now)
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
}
