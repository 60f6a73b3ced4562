// A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1, with its own port,
// storage, config, CA and credentials, optionally behind TLS and htpasswd basic auth or a bearer-token
// issuer that runs in the test process. Acceptance tests for Grail's registry client and for the
// independent clients (skopeo, dockerd) all start their registry here.
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash, createPrivateKey, type KeyObject, randomBytes, sign, X509Certificate } from 'node:crypto'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import {
  createServer as createHttpServer,
  type IncomingMessage,
  request as httpRequest,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { runCommand } from '../../src/util/exec.js'
import { freePort } from './net.js'

export const DOCKER_REGISTRY = '/usr/bin/docker-registry'
const OPENSSL = 'openssl'
const HTPASSWD = '/usr/bin/htpasswd'
const READY_TIMEOUT_MS = 15_000
const STOP_GRACE_MS = 5_000

export type RegistryAuth = 'none' | 'htpasswd' | 'token'

export interface StartRegistryOptions {
  /** Serve HTTPS with a server certificate signed by the test's CA (default false: plain HTTP). */
  tls?: boolean
  /** Default 'none'. 'token' also starts a `TokenIssuer` (see `TestRegistry.issuer`). */
  auth?: RegistryAuth
  /** `storage.delete.enabled`; default true. */
  deleteEnabled?: boolean
  /** Lifetime of the issuer's tokens (auth 'token'); default 300 s. Distribution adds 60 s of leeway. */
  tokenTtlSeconds?: number
}

/** The certificates a registry's helpers share: one CA per registry, one server cert for 127.0.0.1. */
export interface TestCerts {
  /** PEM of the CA the test made. */
  readonly caFile: string
  /** Server certificate (SAN IP:127.0.0.1, DNS:localhost) and key, signed by the CA. */
  readonly certFile: string
  readonly keyFile: string
}

export interface TokenIssuer {
  /** `http(s)://127.0.0.1:PORT`; the registry's realm is `${url}/token`. */
  readonly url: string
  readonly realm: string
  readonly service: string
  /** The JWT `iss` (the registry checks it). */
  readonly issuer: string
  /** Requests the issuer answered (any status): tests count them to check token caching. */
  readonly requests: number
  /** Tokens issued (200 answers). */
  readonly issued: number
  /** Lifetime of new tokens; tests may change it between requests. */
  ttlSeconds: number
  stop(): Promise<void>
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  readonly host: string
  readonly port: number
  /** `https://127.0.0.1:PORT` or `http://127.0.0.1:PORT` */
  readonly url: string
  readonly tls: boolean
  readonly auth: RegistryAuth
  /** PEM of the test's CA (made even for plain HTTP registries, so a TLS proxy can use it). */
  readonly caFile: string
  readonly certs: TestCerts
  /** A dir with only `ca.crt`, for skopeo's `--cert-dir` and docker's `certs.d/HOST:PORT/`. */
  readonly certDir: string
  /** Valid credentials for htpasswd and token auth (also set, unused, for 'none'). */
  readonly username: string
  /** 24 random hex characters; acceptance tests grep for it. */
  readonly password: string
  readonly storageDir: string
  /** The temp dir holding config, storage, certs, htpasswd and `registry.log`; removed by `stop()`. */
  readonly dir: string
  /** The token issuer when auth is 'token'. */
  readonly issuer: TokenIssuer | undefined
  /** The current registry process's pid (changes on `restart()`). */
  readonly pid: number
  /** Stops the registry (SIGTERM, then SIGKILL) and the issuer, removes `dir`. Idempotent; final. */
  stop(): Promise<void>
  /** SIGKILLs exactly the registry's pid and waits for it to exit; `restart()` brings it back. */
  kill(): Promise<void>
  /** Starts the registry again on the same port, storage, config and certs (kills it first if running). */
  restart(): Promise<void>
  /** Where the filesystem driver keeps a blob's bytes (`digest` is `sha256:HEX`). */
  blobPath(digest: string): string
  /** The registry's stderr/stdout so far (it never goes to the test's output). */
  logs(): string
}

/** Starts a registry and waits until `/v2/` answers (401 counts as up). Call `stop()` from an `after` hook. */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const tls = opts.tls ?? false
  const auth = opts.auth ?? 'none'
  const dir = await mkdtemp(join(tmpdir(), 'grail-registry-'))
  let issuer: TokenIssuer | undefined
  try {
    const certs = await makeCerts(join(dir, 'tls'))
    const certDir = join(dir, 'certs.d')
    await mkdir(certDir)
    await writeFile(join(certDir, 'ca.crt'), readFileSync(certs.caFile))
    const storageDir = join(dir, 'storage')
    await mkdir(storageDir)
    const username = 'grail-test'
    const password = randomBytes(12).toString('hex')
    const port = await freePort()
    const host = `127.0.0.1:${port}`

    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: 'warn', accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: storageDir },
        delete: { enabled: opts.deleteEnabled ?? true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: {
        addr: host,
        secret: randomBytes(16).toString('hex'),
        ...(tls ? { tls: { certificate: certs.certFile, key: certs.keyFile } } : {}),
      },
    }
    if (auth === 'htpasswd') {
      const file = join(dir, 'htpasswd')
      await writeFile(file, await htpasswdEntry(username, password), { mode: 0o600 })
      config.auth = { htpasswd: { realm: 'grail-test', path: file } }
    } else if (auth === 'token') {
      issuer = await startTokenIssuer({
        certs,
        tls,
        signingDir: join(dir, 'token'),
        username,
        password,
        service: `grail-test-registry-${port}`,
        ttlSeconds: opts.tokenTtlSeconds ?? 300,
      })
      config.auth = {
        token: {
          realm: issuer.realm,
          service: issuer.service,
          issuer: issuer.issuer,
          rootcertbundle: join(dir, 'token', 'token.crt'),
        },
      }
    }
    // JSON is YAML: distribution's yaml parser reads it as is.
    const configFile = join(dir, 'config.yml')
    await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 })
    const logFile = join(dir, 'registry.log')

    let child: ChildProcess | undefined
    let exited: Promise<void> = Promise.resolve()
    let stopping: Promise<void> | undefined
    const running = (): boolean => !!child && child.exitCode === null && child.signalCode === null

    const launch = async (): Promise<void> => {
      const log = openSync(logFile, 'a')
      let c: ChildProcess
      try {
        // Only PATH: distribution reads REGISTRY_* variables as config overrides.
        c = spawn(DOCKER_REGISTRY, ['serve', configFile], {
          stdio: ['ignore', log, log],
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        })
      } finally {
        closeSync(log)
      }
      child = c
      exited = new Promise((resolve) => c.once('exit', () => resolve()))
      const spawnError = await new Promise<Error | undefined>((resolve) => {
        c.once('spawn', () => resolve(undefined))
        c.once('error', resolve)
      })
      if (spawnError) throw new Error(`cannot start ${DOCKER_REGISTRY}: ${spawnError.message}`)
      await waitUp(`${tls ? 'https' : 'http'}://${host}/v2/`, certs.caFile, c, logFile)
    }
    const kill = async (): Promise<void> => {
      if (!running() || !child) return
      child.kill('SIGKILL')
      await exited
    }
    const terminate = async (): Promise<void> => {
      if (!running() || !child) return
      child.kill('SIGTERM')
      const grace = new AbortController()
      const inTime = await Promise.race([
        exited.then(() => true),
        sleep(STOP_GRACE_MS, false, { signal: grace.signal }),
      ]).finally(() => grace.abort())
      if (!inTime) await kill()
    }

    const reg: TestRegistry = {
      host,
      port,
      url: `${tls ? 'https' : 'http'}://${host}`,
      tls,
      auth,
      caFile: certs.caFile,
      certs,
      certDir,
      username,
      password,
      storageDir,
      dir,
      issuer,
      get pid() {
        return child?.pid ?? -1
      },
      stop() {
        stopping ??= (async () => {
          await terminate()
          await issuer?.stop()
          await rm(dir, { recursive: true, force: true })
        })()
        return stopping
      },
      kill,
      async restart() {
        if (stopping) throw new Error(`registry ${host} was stopped; restart() only follows kill()`)
        await kill()
        await launch()
      },
      blobPath(digest) {
        const [alg, hex] = digest.split(':')
        if (!alg || !hex) throw new Error(`not a digest: ${digest}`)
        return join(storageDir, 'docker', 'registry', 'v2', 'blobs', alg, hex.slice(0, 2), hex, 'data')
      },
      logs() {
        try {
          return readFileSync(logFile, 'utf8')
        } catch {
          return ''
        }
      },
    }
    try {
      await launch()
    } catch (err) {
      const tail = reg.logs().trimEnd().split('\n').slice(-20).join('\n')
      await reg.stop()
      throw new Error(
        `docker-registry on ${host} did not start: ${String(err)}\n--- registry.log ---\n${tail}`,
        {
          cause: err,
        },
      )
    }
    return reg
  } catch (err) {
    await issuer?.stop()
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

/** Polls `/v2/` until any HTTP answer (200 or 401) arrives; fails early when the process exits. */
async function waitUp(url: string, caFile: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  const ca = readFileSync(caFile)
  let last = 'no answer'
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `exited with ${child.signalCode ?? child.exitCode}: ${readFileSync(logFile, 'utf8').trim()}`,
      )
    }
    try {
      const res = await rawRequest(url, { ca, timeoutMs: 1000 })
      if (res.status === 200 || res.status === 401) return
      last = `HTTP ${res.status}`
    } catch (err) {
      last = String(err)
    }
    await sleep(50)
  }
  throw new Error(`${url} gave no answer within ${READY_TIMEOUT_MS} ms (last: ${last})`)
}

// --- certificates -----------------------------------------------------------------------------------------

/** A CA and a server certificate for 127.0.0.1 signed by it, both P-256, valid for 2 days. */
export async function makeCerts(dir: string): Promise<TestCerts> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const caFile = join(dir, 'ca.crt')
  const caKey = join(dir, 'ca.key')
  const certFile = join(dir, 'server.crt')
  const keyFile = join(dir, 'server.key')
  const csr = join(dir, 'server.csr')
  const ext = join(dir, 'server.ext')
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  await runCommand({
    file: OPENSSL,
    args: [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      caKey,
      '-out',
      caFile,
      '-days',
      '2',
      '-subj',
      '/CN=Grail test CA',
    ].concat([
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]),
  })
  await runCommand({
    file: OPENSSL,
    args: ['req', ...ec, '-keyout', keyFile, '-out', csr, '-subj', '/CN=127.0.0.1'],
  })
  await writeFile(
    ext,
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  )
  await runCommand({
    file: OPENSSL,
    args: ['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial'].concat([
      '-days',
      '2',
      '-sha256',
      '-extfile',
      ext,
      '-out',
      certFile,
    ]),
  })
  await chmod(keyFile, 0o600)
  await chmod(caKey, 0o600)
  return { caFile, certFile, keyFile }
}

/** One bcrypt htpasswd line; the password goes through stdin, never argv (where `ps` would show it). */
async function htpasswdEntry(user: string, password: string): Promise<string> {
  const res = await runCommand({ file: HTPASSWD, args: ['-B', '-i', '-n', user], input: `${password}\n` })
  return res.stdout.toString('utf8').trim().concat('\n')
}

// --- token issuer -----------------------------------------------------------------------------------------

/**
 * libtrust's key id, which distribution 2.8 matches against a JWT's `kid`: base32 of the first 30 bytes of
 * sha256(DER SubjectPublicKeyInfo), without padding, in groups of 4 joined by ':'.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  const b32 = base32(createHash('sha256').update(spki).digest().subarray(0, 30))
  return (b32.match(/.{1,4}/g) ?? []).join(':')
}

function base32(buf: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of buf) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31]
  return out
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url')

export interface TokenIssuerOptions {
  certs: TestCerts
  /** Serve HTTPS with the registry's server certificate (same CA). */
  tls: boolean
  /** Where the signing key and its certificate (`token.crt`, the registry's rootcertbundle) go. */
  signingDir: string
  username: string
  password: string
  service: string
  ttlSeconds: number
}

/**
 * The docker token protocol (GET /token?service=…&scope=type:name:actions…, Basic auth), as a registry's
 * `auth.token` realm. Only `username`/`password` get tokens (anything else, anonymous included, gets 401),
 * and a token grants exactly the actions the scopes asked for. Tokens are ES256 JWTs whose header `kid` is
 * the libtrust key id of the key in `token.crt`.
 */
export async function startTokenIssuer(opts: TokenIssuerOptions): Promise<TokenIssuer> {
  await mkdir(opts.signingDir, { recursive: true, mode: 0o700 })
  const keyFile = join(opts.signingDir, 'token.key')
  const certFile = join(opts.signingDir, 'token.crt')
  await runCommand({
    file: OPENSSL,
    args: ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'].concat([
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      '/CN=Grail test token signer',
    ]),
  })
  await chmod(keyFile, 0o600)
  const key = createPrivateKey(readFileSync(keyFile))
  const kid = libtrustKeyId(new X509Certificate(readFileSync(certFile)).publicKey)
  const issuerName = 'grail-test-issuer'
  const expected = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`
  let requests = 0
  let issued = 0

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    requests++
    const url = new URL(req.url ?? '/', 'http://issuer')
    if (req.method !== 'GET' || url.pathname !== '/token') {
      res.writeHead(404).end()
      return
    }
    if (req.headers.authorization !== expected) {
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': 'Basic realm="grail-test"',
      })
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'wrong or no credentials' }] }))
      return
    }
    const service = url.searchParams.get('service') ?? opts.service
    const access = url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter(Boolean)
      .map((scope) => {
        // type:name:actions, where a name may itself hold a ':' (a host:port prefix).
        const first = scope.indexOf(':')
        const last = scope.lastIndexOf(':')
        return {
          type: scope.slice(0, first),
          name: scope.slice(first + 1, last),
          actions: scope
            .slice(last + 1)
            .split(',')
            .filter(Boolean),
        }
      })
    const now = Math.floor(Date.now() / 1000)
    const ttl = issuerObj.ttlSeconds
    const header = { alg: 'ES256', typ: 'JWT', kid }
    const claims = {
      iss: issuerName,
      sub: opts.username,
      aud: service,
      exp: now + ttl,
      nbf: now - 1,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    }
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
    const sig = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' })
    const token = `${signingInput}.${b64url(sig)}`
    issued++
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(
      JSON.stringify({
        token,
        access_token: token,
        expires_in: ttl,
        issued_at: new Date(now * 1000).toISOString(),
      }),
    )
  }

  const server: Server = opts.tls
    ? createHttpsServer(
        { cert: readFileSync(opts.certs.certFile), key: readFileSync(opts.certs.keyFile) },
        handle,
      )
    : createHttpServer(handle)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : 0
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`
  let stopping: Promise<void> | undefined
  const issuerObj: TokenIssuer = {
    url,
    realm: `${url}/token`,
    service: opts.service,
    issuer: issuerName,
    get requests() {
      return requests
    },
    get issued() {
      return issued
    },
    ttlSeconds: opts.ttlSeconds,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return stopping
    },
  }
  return issuerObj
}

// --- a client of the test's own, independent of Grail's ------------------------------------------------

export interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

export interface RawRequestOptions {
  method?: string
  headers?: Record<string, string>
  body?: Buffer | string
  /** CA to trust for https URLs. */
  ca?: Buffer | string
  timeoutMs?: number
}

/** One HTTP(S) request with node's own client, whole body in memory. Never follows redirects. */
export function rawRequest(url: string, opts: RawRequestOptions = {}): Promise<RawResponse> {
  const u = new URL(url)
  const fn = u.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = fn(
      u,
      {
        method: opts.method ?? 'GET',
        headers: opts.headers,
        ...(u.protocol === 'https:' && opts.ca ? { ca: opts.ca } : {}),
        timeout: opts.timeoutMs ?? 30_000,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        )
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${opts.timeoutMs ?? 30_000} ms`)))
    req.on('error', reject)
    req.end(opts.body)
  })
}

export interface RegistryGetOptions extends Omit<RawRequestOptions, 'ca'> {
  /** Base URL to send the request to instead of `registry.url` (a tamper proxy in front of it). */
  via?: string
  /** Credentials; default the registry's own; `null` for anonymous. */
  creds?: { username: string; password: string } | null
}

/**
 * A request to a registry (or a proxy in front of it) as a plain client would make it, answering its auth
 * challenge: Basic for htpasswd, the token flow (the challenge's realm, service and scope) for token.
 */
export async function registryRequest(
  registry: TestRegistry,
  path: string,
  opts: RegistryGetOptions = {},
): Promise<RawResponse> {
  const ca = readFileSync(registry.caFile)
  const url = `${opts.via ?? registry.url}${path}`
  const creds =
    opts.creds === undefined ? { username: registry.username, password: registry.password } : opts.creds
  const basic = creds
    ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
    : undefined
  const first = await rawRequest(url, {
    ...opts,
    ca,
    headers: { ...opts.headers, ...(registry.auth === 'htpasswd' && basic ? { authorization: basic } : {}) },
  })
  const challenge = String(first.headers['www-authenticate'] ?? '')
  if (first.status !== 401 || !challenge.startsWith('Bearer ')) return first
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
  const tokenUrl = new URL(params.realm ?? '')
  if (params.service) tokenUrl.searchParams.set('service', params.service)
  if (params.scope) tokenUrl.searchParams.set('scope', params.scope)
  const tok = await rawRequest(tokenUrl.href, { ca, headers: basic ? { authorization: basic } : {} })
  if (tok.status !== 200) return tok
  const { token } = JSON.parse(tok.body.toString('utf8')) as { token: string }
  return rawRequest(url, { ...opts, ca, headers: { ...opts.headers, authorization: `Bearer ${token}` } })
}
