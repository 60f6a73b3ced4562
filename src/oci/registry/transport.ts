import { readFileSync } from 'node:fs'
import { rootCertificates } from 'node:tls'
import { Agent, type Dispatcher, request } from 'undici'
import { GrailError } from '../../errors.js'
import { challengeScopes, parseWwwAuthenticate } from './challenge.js'
import type { Credentials, RegistryClientOptions } from './types.js'

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
export type Body = Buffer | NodeJS.ReadableStream | string
export type Response = Dispatcher.ResponseData

export interface SendOptions {
  method: Method
  /** a path on the registry (`/v2/…`) or an absolute URL (an upload Location) */
  url: string
  headers?: Record<string, string>
  /** called once per attempt; a body that cannot be produced again makes the request `oneShot` */
  body?: () => Body
  /** the token scopes the request needs (`repository:a/b:pull`) */
  scopes: string[]
  /** no retry inside: a retryable failure throws a RetryableError for the caller to start over */
  oneShot?: boolean
  /** follow redirects (GET and HEAD), never forwarding Authorization to another host */
  redirect?: boolean
}

/** A failure the caller may retry from its start (a cut connection, a 5xx, a token that expired). */
export class RetryableError extends Error {
  readonly retryAfterMs: number | undefined
  constructor(message: string, retryAfterMs?: number) {
    super(message)
    this.name = 'RetryableError'
    this.retryAfterMs = retryAfterMs
  }
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
])

export function isRetryable(err: unknown): boolean {
  if (err instanceof RetryableError) return true
  if (!(err instanceof Error)) return false
  const code = (err as NodeJS.ErrnoException).code
  if (code !== undefined && NETWORK_CODES.has(code)) return true
  const cause = (err as { cause?: unknown }).cause
  return cause !== undefined && cause !== err && isRetryable(cause)
}

/** `/v2/a/uploads/x?_state=…&digest=…` → `/v2/a/uploads/x`: query strings can carry tokens or state */
export function shownPath(url: string): string {
  try {
    return new URL(url, 'http://x').pathname
  } catch {
    return url.split('?')[0] ?? url
  }
}

export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

const RETRY_AFTER_CAP_MS = 30_000
const MAX_REDIRECTS = 5

interface Token {
  value: string
  expires: number
}

/**
 * HTTP to one registry: retries with backoff, redirects, and the auth flows (basic, and the bearer
 * challenge with tokens cached per scope). Nothing here puts a credential or a token in an error.
 */
export class Transport {
  readonly base: URL
  readonly registry: string
  private readonly agent: Agent
  private readonly creds: Credentials
  private readonly attempts: number
  private readonly baseMs: number
  private readonly insecure: boolean
  private readonly tokens = new Map<string, Token>()
  /** the registry asked for Basic: send the user and password with every request */
  private basic = false

  constructor(opts: RegistryClientOptions) {
    let base: URL
    try {
      base = new URL(opts.url)
    } catch {
      throw new GrailError('REGISTRY_REF_INVALID', `registry URL "${opts.url}" is not a URL`, {
        hint: 'write https://host[:port]',
      })
    }
    if (base.protocol !== 'https:' && base.protocol !== 'http:') {
      throw new GrailError('REGISTRY_REF_INVALID', `registry URL "${base.origin}" is neither https nor http`)
    }
    this.base = new URL(base.origin)
    this.registry = base.host.toLowerCase()
    this.insecure = opts.insecure === true
    this.checkScheme(this.base)
    this.creds = opts.credentials ?? { kind: 'anonymous' }
    this.attempts = Math.max(1, opts.retries ?? 4)
    this.baseMs = opts.retryBaseMs ?? 200
    let ca: string[] | undefined
    if (opts.caFile !== undefined) {
      let pem: string
      try {
        pem = readFileSync(opts.caFile, 'utf8')
      } catch (err) {
        throw new GrailError(
          'REGISTRY_ERROR',
          `cannot read the CA file ${opts.caFile} of registry ${this.registry}: ${(err as Error).message}`,
          {
            hint: 'the registry `ca:` names a PEM file of the CAs to trust',
          },
        )
      }
      ca = [...rootCertificates, pem]
    }
    this.agent = new Agent(ca ? { connect: { ca } } : {})
  }

  private checkScheme(url: URL): void {
    if (url.protocol === 'http:' && !this.insecure && !isLoopback(url.hostname)) {
      throw new GrailError(
        'REGISTRY_INSECURE',
        `registry ${url.host}: plain http is refused for a host that is not loopback`,
        {
          hint: 'use https://, or set `insecure: true` on the registry if this network is trusted',
        },
      )
    }
  }

  close(): Promise<void> {
    return this.agent.close()
  }

  /** Waits before attempt `n` (1-based retry count): exponential with jitter, or what Retry-After said. */
  async backoff(n: number, retryAfterMs?: number): Promise<void> {
    const exp = this.baseMs * 2 ** (n - 1)
    const ms =
      retryAfterMs !== undefined
        ? Math.min(retryAfterMs, RETRY_AFTER_CAP_MS)
        : exp / 2 + Math.random() * (exp / 2)
    await new Promise((r) => setTimeout(r, ms))
  }

  get maxAttempts(): number {
    return this.attempts
  }

  /**
   * Sends a request and hands the final response to `handle` (any status but a redirect, a 401 it could
   * answer, or a retryable one). A retryable failure inside `handle` (the body cut mid-stream) retries the
   * whole request. The response body is always consumed.
   */
  async send<T>(opts: SendOptions, handle: (res: Response, url: URL) => Promise<T>): Promise<T> {
    const attempts = opts.oneShot ? 1 : this.attempts
    let authRetried = false
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(opts, handle, authRetried)
      } catch (err) {
        if (err instanceof NeedAuth) {
          if (authRetried) throw err.refused
          authRetried = true
          if (opts.oneShot) throw new RetryableError('the registry asked for credentials mid-upload')
          attempt--
          continue
        }
        if (!isRetryable(err) || attempt >= attempts) throw this.final(err, opts)
        await this.backoff(attempt, err instanceof RetryableError ? err.retryAfterMs : undefined)
      }
    }
  }

  private final(err: unknown, opts: SendOptions): unknown {
    if (err instanceof GrailError || (opts.oneShot && isRetryable(err))) return err
    if (isRetryable(err)) {
      return new GrailError(
        'REGISTRY_UNREACHABLE',
        `registry ${this.registry}: ${opts.method} ${shownPath(opts.url)} failed after ${this.attempts} attempts: ${(err as Error).message}`,
        {
          hint: 'check that the registry is up and reachable from here; Grail retries 5xx, 429 and cut connections',
        },
      )
    }
    return err
  }

  private async once<T>(
    opts: SendOptions,
    handle: (res: Response, url: URL) => Promise<T>,
    authed: boolean,
  ): Promise<T> {
    let url = new URL(opts.url, this.base)
    let sameHost = true
    for (let hop = 0; ; hop++) {
      this.checkScheme(url)
      const headers: Record<string, string> = { 'user-agent': 'grail', ...opts.headers }
      const auth = sameHost && url.origin === this.base.origin ? this.authorization(opts.scopes) : undefined
      if (auth !== undefined) headers.authorization = auth
      let res: Response
      try {
        res = await request(url, {
          method: opts.method,
          headers,
          body: hop === 0 && opts.body ? (opts.body() as Buffer) : undefined,
          dispatcher: this.agent,
        })
      } catch (err) {
        throw this.tlsError(err, url) ?? scrub(err)
      }
      const status = res.statusCode
      if (status >= 300 && status < 400 && status !== 304 && opts.redirect && res.headers.location) {
        await res.body.dump().catch(() => undefined)
        if (hop >= MAX_REDIRECTS) {
          throw new GrailError(
            'REGISTRY_ERROR',
            `registry ${this.registry}: ${opts.method} ${shownPath(opts.url)} redirected more than ${MAX_REDIRECTS} times`,
          )
        }
        const next = new URL(String(res.headers.location), url)
        if (next.origin !== this.base.origin) sameHost = false
        url = next
        continue
      }
      if (status === 401 && url.origin === this.base.origin) {
        const challenge = res.headers['www-authenticate']
        await res.body.dump().catch(() => undefined)
        if (authed) throw this.refused(opts)
        await this.answer(challenge, opts)
        throw new NeedAuth(this.refused(opts))
      }
      if (status === 403 && url.origin === this.base.origin) {
        await res.body.dump().catch(() => undefined)
        throw this.refused(opts)
      }
      if (status >= 500 || status === 429) {
        await res.body.dump().catch(() => undefined)
        throw new RetryableError(`the registry answered ${status}`, retryAfter(res.headers['retry-after']))
      }
      try {
        return await handle(res, url)
      } finally {
        await res.body.dump().catch(() => undefined)
      }
    }
  }

  /** A certificate the client does not trust: a GrailError naming the host, with where CAs come from. */
  private tlsError(err: unknown, url: URL): GrailError | undefined {
    const e = err as { code?: unknown; cause?: { code?: unknown } }
    const code = String(e?.code ?? e?.cause?.code ?? '')
    if (!/^(CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|ERR_TLS_|ERR_SSL_)/.test(code)) return undefined
    return new GrailError(
      'REGISTRY_TLS',
      `registry ${this.registry}: the TLS connection to ${url.host} failed (${code})`,
      {
        hint: 'a registry with a private CA needs `ca:` (a PEM file of that CA) in its registry settings; the certificate must name the host',
      },
    )
  }

  private refused(opts: SendOptions): GrailError {
    const repo = opts.scopes.map((s) => s.split(':')[1]).find((r) => r !== undefined)
    const what = repo ? `for repository ${repo}` : ''
    const how =
      this.creds.kind === 'anonymous'
        ? 'no credentials were given: set the registry `auth:` (env, file, or auto from ~/.docker/config.json auths)'
        : 'check the user and password (or token) the registry `auth:` points at: environment variables, the named file, or ~/.docker/config.json auths'
    return new GrailError(
      'REGISTRY_AUTH',
      `registry ${this.registry} refused the credentials ${what}`.trim(),
      { hint: how },
    )
  }

  private authorization(scopes: string[]): string | undefined {
    const token = this.tokens.get(scopeKey(scopes))
    if (token && token.expires > Date.now()) return `Bearer ${token.value}`
    if (this.basic && this.creds.kind === 'basic')
      return basicHeader(this.creds.username, this.creds.password)
    return undefined
  }

  /** Answers a 401's challenge: Basic with the user and password, or a bearer token for the scopes. */
  private async answer(header: string | string[] | undefined, opts: SendOptions): Promise<void> {
    const challenges = parseWwwAuthenticate(header)
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm)
    if (bearer) {
      const scopes = [...new Set([...opts.scopes, ...challengeScopes(bearer)])]
      const token = await this.fetchToken(bearer.params.realm as string, bearer.params.service, scopes, opts)
      this.tokens.set(scopeKey(opts.scopes), token)
      return
    }
    if (challenges.some((c) => c.scheme === 'basic') && this.creds.kind === 'basic') {
      this.basic = true
      return
    }
    throw this.refused(opts)
  }

  private async fetchToken(
    realm: string,
    service: string | undefined,
    scopes: string[],
    opts: SendOptions,
  ): Promise<Token> {
    let url: URL
    try {
      url = new URL(realm)
    } catch {
      throw new GrailError(
        'REGISTRY_ERROR',
        `registry ${this.registry} names a token realm that is not a URL`,
      )
    }
    this.checkScheme(url)
    const headers: Record<string, string> = { 'user-agent': 'grail' }
    let method: 'GET' | 'POST' = 'GET'
    let body: string | undefined
    if (this.creds.kind === 'identity-token') {
      // OAuth2 refresh-token grant, as docker does with an identitytoken
      method = 'POST'
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: this.creds.token,
        client_id: 'grail',
      })
      if (service) form.set('service', service)
      if (scopes.length > 0) form.set('scope', scopes.join(' '))
      body = form.toString()
      headers['content-type'] = 'application/x-www-form-urlencoded'
    } else {
      if (service) url.searchParams.set('service', service)
      for (const s of scopes) url.searchParams.append('scope', s)
      if (this.creds.kind === 'basic')
        headers.authorization = basicHeader(this.creds.username, this.creds.password)
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await request(url, { method, headers, body, dispatcher: this.agent }).catch(
          (err: unknown) => {
            throw this.tlsError(err, url) ?? scrub(err)
          },
        )
        const text = await res.body.text()
        if (res.statusCode === 401 || res.statusCode === 403) throw this.refused(opts)
        if (res.statusCode >= 500 || res.statusCode === 429)
          throw new RetryableError(`the token service answered ${res.statusCode}`)
        if (res.statusCode !== 200) {
          throw new GrailError(
            'REGISTRY_AUTH',
            `the token service of registry ${this.registry} answered ${res.statusCode}`,
          )
        }
        let json: { token?: unknown; access_token?: unknown; expires_in?: unknown }
        try {
          json = JSON.parse(text)
        } catch {
          throw new GrailError(
            'REGISTRY_AUTH',
            `the token service of registry ${this.registry} answered with something that is not JSON`,
          )
        }
        const value = typeof json.token === 'string' ? json.token : json.access_token
        if (typeof value !== 'string' || value.length === 0) {
          throw new GrailError(
            'REGISTRY_AUTH',
            `the token service of registry ${this.registry} gave no token`,
          )
        }
        const secs = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 60
        // a little early: a token that expires in flight costs a whole upload
        return { value, expires: Date.now() + secs * 1000 - Math.min(5000, secs * 500) }
      } catch (err) {
        if (!isRetryable(err) || attempt >= this.attempts)
          throw this.final(err, { ...opts, url: url.pathname })
        await this.backoff(attempt)
      }
    }
  }
}

class NeedAuth extends Error {
  constructor(readonly refused: GrailError) {
    super('authentication needed')
  }
}

function scopeKey(scopes: string[]): string {
  return [...scopes].sort().join(' ')
}

function basicHeader(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
}

function retryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v
  if (s === undefined) return undefined
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000
  const t = Date.parse(s)
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now())
}

/** A network error with nothing of the request attached (undici errors can hold headers in their causes). */
function scrub(err: unknown): Error {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException }
  const code = e?.code ?? e?.cause?.code
  const out = new Error(
    `${code ?? 'network error'}: ${e?.cause?.message ?? e?.message ?? String(err)}`,
  ) as NodeJS.ErrnoException
  if (code !== undefined) out.code = code
  return out
}
