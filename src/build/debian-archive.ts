/**
 * Reading the Debian archive a `debian:` base is bootstrapped from: which suites mmdebstrap installs
 * from, and the newest version of every package in each, from signed, hash-checked indexes cached under
 * the project's .grail/archive/.
 */
import { existsSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { GrailError, isErrno } from '../errors.js'
import type { GrailHome } from '../home.js'
import { sha256Hex } from '../oci/digest.js'
import type { BaseSource } from '../spec/types.js'
import { runCommand } from '../util/exec.js'
import { writeAtomic } from '../util/write-atomic.js'
import { parsePackages, parseRelease, type ReleaseFile } from './debian-index.js'
import { hostArchitecture } from './env.js'

type DebianBase = Extract<BaseSource, { kind: 'debian' }>

/** One suite of an archive, as a line of sources.list has it. */
export interface ArchiveSuite {
  uri: string
  suite: string
  components: string[]
  /** the security archive: a newer version from here is a security update */
  security: boolean
}

export const DEBIAN_MIRROR = 'http://deb.debian.org/debian'
export const DEBIAN_SECURITY_MIRROR = 'http://security.debian.org/debian-security'
export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg'

/** Releases mmdebstrap (1.3) adds `-updates` and the security suite for, when no mirror is given. */
const STABLE_RELEASES = ['oldstable', 'stable', 'stretch', 'buster', 'bullseye', 'bookworm', 'trixie']
/** Before bullseye the security suite was `SUITE/updates`. */
const OLD_SECURITY = ['stretch', 'buster']

/**
 * The suites a Debian base installs from, exactly as mmdebstrap writes them into sources.list: with no
 * `mirror`, deb.debian.org's suite, plus for a stable release its `-updates` and the security archive's
 * `-security`; with a `mirror`, that mirror's suite alone (so a newer version only the security archive
 * has is not something a build from that mirror could install, and is not reported).
 */
export function debianSources(base: DebianBase): ArchiveSuite[] {
  const components = base.components
  if (base.mirror) return [{ uri: base.mirror, suite: base.suite, components, security: false }]
  const out: ArchiveSuite[] = [{ uri: DEBIAN_MIRROR, suite: base.suite, components, security: false }]
  if (STABLE_RELEASES.includes(base.suite)) {
    out.push({ uri: DEBIAN_MIRROR, suite: `${base.suite}-updates`, components, security: false })
    const suite = OLD_SECURITY.includes(base.suite) ? `${base.suite}/updates` : `${base.suite}-security`
    out.push({ uri: DEBIAN_SECURITY_MIRROR, suite, components, security: true })
  }
  return out
}

/** The newest version of each package of one component of one suite, and where it was read from. */
export interface SuiteIndex {
  uri: string
  suite: string
  component: string
  architecture: string
  security: boolean
  /** the suite's Release `Date:` */
  date: string
  /** when Grail last checked the InRelease */
  checkedAt: string
  packages: Map<string, string>
}

interface CachedIndex {
  uri: string
  suite: string
  component: string
  architecture: string
  date: string
  checkedAt: string
  /** sha256 of the Packages file the versions were read from */
  index: string
  packages: Record<string, string>
}

export interface ArchiveOptions {
  home: GrailHome
  /** a cached index checked longer ago than this is checked again (policies.patch.interval) */
  maxAgeMs: number
  now: number
  /** keyring gpgv checks InRelease signatures with; default the Debian archive keyring */
  keyring?: string
}

const trimSlash = (u: string): string => u.replace(/\/+$/, '')

function unreachable(url: string, err: unknown): GrailError {
  return new GrailError('ARCHIVE_UNREACHABLE', `cannot read ${url}: ${(err as Error).message}`, {
    hint: "check the network (and http_proxy) or the base's `mirror:`; a cached index is used while it is younger than policies.patch.interval",
  })
}

async function download(url: string): Promise<Buffer> {
  if (url.startsWith('file://')) {
    try {
      return await readFile(fileURLToPath(url))
    } catch (err) {
      throw unreachable(url, err)
    }
  }
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(120_000) })
  } catch (err) {
    throw unreachable(url, (err as Error).cause ?? err)
  }
  if (!res.ok) throw unreachable(url, new Error(`HTTP ${res.status}`))
  return Buffer.from(await res.arrayBuffer())
}

/** The signed content of an InRelease, after gpgv checked its signature against `keyring`. */
async function verifiedRelease(url: string, data: Buffer, keyring: string): Promise<string> {
  if (!existsSync(keyring)) {
    throw new GrailError('ARCHIVE_UNTRUSTED', `no keyring at ${keyring} to check ${url} with`, {
      hint: 'install the Debian archive keyring: `apt-get install debian-archive-keyring`',
    })
  }
  // gpgv writes exactly what was signed: that, not the clear text around the signature, is parsed
  const res = await runCommand(
    { file: 'gpgv', args: ['--keyring', keyring, '--output', '-', '-'], input: data },
    { allowFailure: true },
  )
  if (res.code !== 0) {
    const why = res.stderr.toString('utf8').trim().split('\n').slice(-2).join('; ')
    throw new GrailError('ARCHIVE_UNTRUSTED', `${url}: the signature does not check out: ${why}`, {
      hint: `the mirror serves an InRelease not signed by a key of ${keyring}: check the mirror (a proxy that rewrites it?)`,
    })
  }
  return res.stdout.toString('utf8')
}

async function decompress(path: string, data: Buffer): Promise<string> {
  if (path.endsWith('.xz')) {
    const res = await runCommand({ file: 'xz', args: ['--decompress', '--stdout'], input: data })
    return res.stdout.toString('utf8')
  }
  if (path.endsWith('.gz')) return gunzipSync(data).toString('utf8')
  return data.toString('utf8')
}

function cachePath(home: GrailHome, s: { uri: string; suite: string }, component: string, arch: string) {
  const id = sha256Hex(`${trimSlash(s.uri)} ${s.suite} ${component} ${arch}`).slice(0, 16)
  return join(home.root, 'archive', `${s.suite.replace(/[^a-z0-9.-]/g, '_')}-${component}-${arch}-${id}.json`)
}

async function readCached(path: string): Promise<CachedIndex | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as CachedIndex
  } catch (err) {
    // a torn or foreign file is read again from the archive
    if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return undefined
    throw err
  }
}

function toIndex(c: CachedIndex, security: boolean): SuiteIndex {
  return {
    uri: c.uri,
    suite: c.suite,
    component: c.component,
    architecture: c.architecture,
    security,
    date: c.date,
    checkedAt: c.checkedAt,
    packages: new Map(Object.entries(c.packages)),
  }
}

/** The index of the Packages file in a Release: xz, else gzip, else plain (what the mirror lists). */
function packagesEntry(release: ReleaseFile, component: string, arch: string, where: string) {
  for (const ext of ['.xz', '.gz', '']) {
    const path = `${component}/binary-${arch}/Packages${ext}`
    const entry = release.sha256.get(path)
    if (entry) return { path, ...entry }
  }
  throw new GrailError('ARCHIVE_INVALID', `${where} lists no ${component}/binary-${arch}/Packages`, {
    hint: "check the base's components and architecture: the suite may not have them",
  })
}

/**
 * The package versions of every component of `suites` for `architecture`. A cached index checked within
 * `maxAgeMs` is used as is; otherwise the InRelease is fetched again and its signature, its Valid-Until
 * and its date (never older than the cached one) checked, and the Packages file downloaded only when its
 * SHA256 changed, then checked against it before anything is read from it.
 */
export async function readArchive(
  suites: readonly ArchiveSuite[],
  architecture: string,
  opts: ArchiveOptions,
): Promise<SuiteIndex[]> {
  const out: SuiteIndex[] = []
  await mkdir(join(opts.home.root, 'archive'), { recursive: true })
  for (const s of suites) {
    let release: ReleaseFile | undefined
    const base = `${trimSlash(s.uri)}/dists/${s.suite}`
    for (const component of s.components) {
      const path = cachePath(opts.home, s, component, architecture)
      const cached = await readCached(path)
      if (cached && opts.now - Date.parse(cached.checkedAt) < opts.maxAgeMs) {
        out.push(toIndex(cached, s.security))
        continue
      }
      const where = `${base}/InRelease`
      if (!release) {
        release = parseRelease(
          await verifiedRelease(where, await download(where), opts.keyring ?? DEBIAN_KEYRING),
          where,
        )
        if (release.validUntil !== null && Date.parse(release.validUntil) < opts.now) {
          throw new GrailError('ARCHIVE_UNTRUSTED', `${where} expired at ${release.validUntil}`, {
            hint: "the mirror serves an outdated copy of the suite (or this machine's clock is wrong): try another mirror",
          })
        }
      }
      if (cached && Date.parse(release.date) < Date.parse(cached.date)) {
        throw new GrailError(
          'ARCHIVE_UNTRUSTED',
          `${where} is dated ${release.date}, older than the ${cached.date} read before`,
          { hint: 'the mirror serves an older copy of the suite than it did: try another mirror' },
        )
      }
      const entry = packagesEntry(release, component, architecture, where)
      let packages: Record<string, string>
      if (cached && cached.index === entry.sha256) packages = cached.packages
      else {
        const url = `${base}/${entry.path}`
        const data = await download(url)
        const got = sha256Hex(data)
        if (data.length !== entry.size || got !== entry.sha256) {
          throw new GrailError(
            'ARCHIVE_HASH_MISMATCH',
            `${url}: ${data.length} bytes with SHA256 ${got}, the signed Release says ${entry.size} bytes, ${entry.sha256}`,
            { hint: 'the mirror is being updated or serves a damaged file: run the check again later' },
          )
        }
        packages = Object.fromEntries(parsePackages(await decompress(entry.path, data)))
      }
      const fresh: CachedIndex = {
        uri: s.uri,
        suite: s.suite,
        component,
        architecture,
        date: release.date,
        checkedAt: new Date(opts.now).toISOString(),
        index: entry.sha256,
        packages,
      }
      await writeAtomic(path, JSON.stringify(fresh))
      out.push(toIndex(fresh, s.security))
    }
  }
  return out
}

/** The architecture a Debian base is bootstrapped for. */
export function debianArchitecture(base: DebianBase): string {
  return base.architecture ?? hostArchitecture()
}
