import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { GrailError } from '../errors.js'

/** An OCI content digest, always `sha256:<64 hex>` in Grail. */
export type Digest = `sha256:${string}`

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/

/** Validates a digest string before it reaches a path; throws a user error naming where it came from. */
export function parseDigest(value: string, where = 'digest'): Digest {
  if (!DIGEST_RE.test(value)) {
    throw new GrailError('BAD_DIGEST', `${where}: "${value}" is not a sha256 digest`, {
      hint: 'expected sha256: followed by 64 lowercase hex characters',
    })
  }
  return value as Digest
}

export function isDigest(value: string): value is Digest {
  return DIGEST_RE.test(value)
}

export function sha256(data: string | Buffer | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

export function sha256Hex(data: string | Buffer | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Streams a file through sha256. */
export async function sha256File(path: string): Promise<{ digest: Digest; size: number }> {
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  return { digest: `sha256:${hash.digest('hex')}`, size }
}

/** The hex part of a digest, for file names. */
export function digestHex(d: Digest): string {
  return d.slice('sha256:'.length)
}
