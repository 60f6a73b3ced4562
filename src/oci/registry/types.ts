import type { Digest } from '../digest.js'

/**
 * A reference to an image in a registry: `host[:port]/repo/path[:tag][@sha256:…]`. A reference with no
 * registry host (`library/x`) is refused rather than defaulted to Docker Hub: Grail never guesses a host.
 */
export interface RegistryRef {
  /** `host` or `host:port`, lower case */
  registry: string
  /** `a/b/c`, lower case, distribution's path grammar */
  repository: string
  tag?: string
  digest?: Digest
}

/** What signs a request: nothing, a user and password (basic, or exchanged for a bearer token), or a
 * token the registry gave (`identitytoken` in a docker config). Never logged, stored or printed. */
export type Credentials =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'identity-token'; token: string }

export interface RegistryClientOptions {
  /** `https://host[:port]` or `http://host[:port]`; plain http only for loopback unless `insecure` */
  url: string
  credentials?: Credentials
  /** PEM file of CAs to trust instead of (in addition to) the system's */
  caFile?: string
  /** allows plain http to a host that is not loopback (the spec's `insecure: true`) */
  insecure?: boolean
  /** attempts per request on 5xx, 429 and connection resets (default 4), backoff from `retryBaseMs` (200) */
  retries?: number
  retryBaseMs?: number
  /** blobs above this many bytes are uploaded in PATCH chunks of this size (default 16 MiB) */
  chunkSize?: number
}

/** A manifest or index as the registry serves it: the exact bytes (their digest is the identity). */
export interface FetchedManifest {
  mediaType: string
  digest: Digest
  bytes: Buffer
}

/** Per-blob progress of a push or pull, for the CLI to render. */
export type TransferEvent =
  | { type: 'blob-skipped'; digest: Digest; size: number; reason: 'exists' | 'mounted' }
  | { type: 'blob-done'; digest: Digest; size: number }
  | { type: 'manifest'; digest: Digest; reference: string }

export interface RegistryClient {
  /** `host[:port]` as errors name it */
  readonly registry: string
  /** GET /v2/: checks reachability and credentials (REGISTRY_AUTH names the registry on a 401) */
  ping(): Promise<void>
  hasBlob(repository: string, digest: Digest): Promise<boolean>
  /** cross-repository mount; false when the registry answered with an upload session instead */
  mountBlob(repository: string, digest: Digest, from: string): Promise<boolean>
  /** uploads a blob (POST then PUT, or PATCH chunks for large ones); `open` is called again on a retry */
  pushBlob(repository: string, digest: Digest, size: number, open: () => NodeJS.ReadableStream): Promise<void>
  /** streams a blob to `dest` (a temp file), hashing as it goes: rejects with DIGEST_MISMATCH (and
   * removes `dest`) when the bytes do not hash to `digest` */
  fetchBlobTo(repository: string, digest: Digest, dest: string, expectedSize?: number): Promise<void>
  /** GET of a manifest or index by tag or digest; bytes verified when the reference is a digest */
  getManifest(repository: string, reference: string): Promise<FetchedManifest>
  /** HEAD of a manifest: its digest and media type, or undefined on 404 */
  headManifest(
    repository: string,
    reference: string,
  ): Promise<{ digest: Digest; mediaType: string } | undefined>
  putManifest(repository: string, reference: string, mediaType: string, bytes: Buffer): Promise<Digest>
  listTags(repository: string): Promise<string[]>
  deleteManifest(repository: string, digest: Digest): Promise<void>
}
