// The no-op fast path of `grail build`. A build whose every image was unchanged records a stamp in the
// project's home: the output it printed and what decided it (the identity of every file and directory the
// build read, a hash of the state database, the blobs it reused). The next `grail build` with the same
// arguments checks the stamp before loading the CLI (bin/grail.js, through dist/bundle/noop.cjs) and, when
// every input is as recorded, does what a no-op build does (marks the blobs in use) and prints the same
// output. Anything different, missing or unreadable sends it down the full path, which replaces the stamp.
//
// This module is bundled on its own and imports Node's built-ins only: the check must cost little more
// than Node's start (no crypto either: loading it costs ~2 ms; the database is compared with a JS hash).
import {
  existsSync,
  fstatSync,
  lstatSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { dirname, isAbsolute, join, resolve } from 'node:path'

export const STAMP_FILE = 'noop-stamp.json'
/** Bump when what a stamp holds or means changes. */
const STAMP_FORMAT = 1
/** The spec file names project.ts looks for (repeated: this module imports nothing of Grail's). */
export const STAMP_SPEC_FILES = ['grail.yaml', 'grail.yml', 'grail.config.ts']
/** Names a copy from a context root leaves out (copy-step.ts); the walk below skips them too. */
const CONTEXT_EXCLUDED = ['.grail', '.git', 'grail.lock']
/** A build context with more entries than this is not stamped (the check would cost what it saves). */
const MAX_ENTRIES = 20_000
/** A state database larger than this is not stamped (hashing it would cost what the check saves). */
const MAX_DB_BYTES = 32 << 20
/**
 * How long a database must have been unchanged before it is compared by identity: longer than a file
 * time's granularity (a kernel tick, 10 ms at most, where times have nanoseconds; seconds on filesystems
 * whose times are whole seconds), so that any later write gives it a later ctime.
 */
function settleMs(ctimeNs: bigint): number {
  return ctimeNs % 1_000_000_000n === 0n ? 2000 : 100
}
/** Work dirs and sandbox ids carry their owner's pid (build/stale.ts). */
const OWNED = /-(\d+)-[0-9a-f]{8,12}$/

export interface NoopStamp {
  format: number
  /** argv, cwd, terminals, environment and the CLI's own files: what else decides the output */
  run: string
  specDir: string
  specFile: string
  /** every path the build's outcome depends on, with its identity (null: it did not exist) */
  paths: Array<[string, string | null]>
  /**
   * the database's size and content hash when the stamp was made, and its identity once a check found
   * the content unchanged while its ctime was over a second old: a later write then changes the
   * identity, so later checks compare the identity only (git's "racily clean" index entries)
   */
  db: { path: string; size: number; hash: string; settled?: string }
  /** every blob the no-op reused (and marks in use), with its path */
  blobs: Array<[string, string]>
  blobChecks: string
  stdout: string
}

/** The argument lists the fast path answers: `build` with `--json` or not, nothing else. */
export function stampableArgv(argv: readonly string[]): boolean {
  const a = argv.join('\0')
  return a === 'build' || a === '--json\0build' || a === 'build\0--json'
}

/** Identity of a path without following a final symlink: any write, chmod, chown or rename changes it. */
export function identity(path: string): string | null {
  const st = lstatSync(path, { bigint: true, throwIfNoEntry: false })
  if (st === undefined) return null
  return `${st.dev}:${st.ino}:${st.mode}:${st.uid}:${st.gid}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`
}

/**
 * Identity of a directory on the way to an input: which inode the name leads to and its type, not its
 * times (an ancestor such as /tmp changes whenever anything is created in it, which changes no input).
 */
export function placeIdentity(path: string): string | null {
  const st = lstatSync(path, { bigint: true, throwIfNoEntry: false })
  return st === undefined ? null : `w:${st.dev}:${st.ino}:${st.mode}`
}

/** The identity a stamp recorded for `path`, taken again the same way. */
function identityLike(path: string, recorded: string | null): string | null {
  return recorded?.startsWith('w:') ? placeIdentity(path) : identity(path)
}

function ctimeNsOf(id: string): bigint {
  return BigInt(id.slice(id.lastIndexOf(':') + 1))
}

/** A blob's fingerprint as oci/blob-check.ts records it when its content last hashed right. */
function fingerprint(path: string): string | undefined {
  const st = statSync(path, { bigint: true, throwIfNoEntry: false })
  return st === undefined ? undefined : `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}`
}

/**
 * 64-bit hash (two 32-bit lanes over the file's words) of the bytes: tells a changed database from the
 * one a stamp recorded (changes are accidental, not forged: a non-cryptographic hash is enough, and
 * loading crypto would cost more than the whole check).
 */
export function contentHash(buf: Uint8Array): string {
  const n = buf.byteLength >>> 2
  const words =
    buf.byteOffset % 4 === 0
      ? new Int32Array(buf.buffer, buf.byteOffset, n)
      : new Int32Array(Uint8Array.from(buf.subarray(0, n * 4)).buffer)
  let a = 0x9747b28c ^ buf.byteLength
  let c = 0x85ebca6b
  for (let i = 0; i < n; i++) {
    const k = words[i] as number
    a = Math.imul(a ^ k, 0x5bd1e995)
    a ^= a >>> 13
    c = Math.imul(c + k, 0x27d4eb2d) ^ (c >>> 15)
  }
  for (let i = n * 4; i < buf.byteLength; i++) {
    a = Math.imul(a ^ (buf[i] as number), 0x01000193)
    c = Math.imul(c + (buf[i] as number), 0x5bd1e995)
  }
  const mix = (h: number) => {
    h ^= h >>> 16
    h = Math.imul(h, 0x85ebca6b)
    h ^= h >>> 13
    h = Math.imul(h, 0xc2b2ae35)
    return (h ^ (h >>> 16)) >>> 0
  }
  return `${mix(a).toString(16).padStart(8, '0')}${mix(c ^ a)
    .toString(16)
    .padStart(8, '0')}`
}

/** The CLI bundle next to the `grail` script that runs (a rebuilt or other Grail never matches). */
function cliFiles(): string[] {
  const script = process.argv[1]
  if (script === undefined) return []
  const bin = dirname(resolve(script))
  return [resolve(script), join(bin, '..', 'dist', 'bundle', 'grail.cjs')]
}

/**
 * Whether the fd is a terminal, without process.stdout.isTTY (setting the streams up costs ~1 ms) and
 * without loading node:tty (~1.5 ms, with net) unless the fd is a character device.
 */
function isTerminal(fd: number): boolean {
  let st: ReturnType<typeof fstatSync>
  try {
    st = fstatSync(fd)
  } catch {
    return false
  }
  return st.isCharacterDevice() && process.getBuiltinModule('node:tty').isatty(fd)
}

/** Everything besides files that decides what `grail build` prints: compared whole. */
export function runKey(argv: readonly string[]): string {
  const env = Object.entries(process.env)
    .filter(
      ([k]) =>
        k.startsWith('GRAIL_') ||
        ['SOURCE_DATE_EPOCH', 'NO_COLOR', 'FORCE_COLOR', 'NODE_OPTIONS'].includes(k),
    )
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return JSON.stringify([
    STAMP_FORMAT,
    argv,
    process.cwd(),
    isTerminal(1),
    isTerminal(2),
    process.execPath,
    process.version,
    process.getuid?.() ?? null,
    env,
    cliFiles().map((f) => [f, identity(f)]),
  ])
}

/** The directory `grail` finds the spec in from the cwd (project.ts findSpecFile), and the dirs it looks in. */
function specSearch(): { dir: string; looked: string[] } | undefined {
  const looked: string[] = []
  let dir = resolve('.')
  for (;;) {
    looked.push(dir)
    if (STAMP_SPEC_FILES.some((name) => existsSync(join(dir, name)))) return { dir, looked }
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

/** The one YAML spec file in `dir`, else undefined (a TypeScript config is always loaded). */
function yamlSpec(dir: string): string | undefined {
  const present = STAMP_SPEC_FILES.filter((f) => existsSync(join(dir, f)))
  return present.length === 1 && /\.ya?ml$/.test(present[0] as string)
    ? join(dir, present[0] as string)
    : undefined
}

export function homeRootFor(specDir: string): string {
  return process.env.GRAIL_HOME ? resolve(process.env.GRAIL_HOME) : join(specDir, '.grail')
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Whether a killed build left work behind that a build would clean up first (build/stale.ts). */
function staleWork(root: string): boolean {
  const list = (dir: string): string[] => {
    try {
      return readdirSync(dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
  }
  const dead = (name: string) => {
    const m = OWNED.exec(name)
    return m !== null && !pidAlive(Number(m[1]))
  }
  if (list(join(root, 'runc')).some((n) => n.startsWith('grail-b-') && dead(n))) return true
  return [join(root, 'tmp'), join(root, 'snapshots')].some((d) => list(d).some(dead))
}

/** The state database's size and hash, when no WAL holds changes not in the file itself. */
export function dbState(path: string): { size: number; hash: string } | undefined {
  if (existsSync(`${path}-wal`) || existsSync(`${path}-journal`)) return undefined
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  if (bytes.byteLength > MAX_DB_BYTES) return undefined
  return { size: bytes.byteLength, hash: contentHash(bytes) }
}

/** Whether the database is as the stamp recorded it; settles the stamp when it can (see `db`). */
function dbUnchanged(root: string, stamp: NoopStamp): boolean {
  const path = stamp.db.path
  if (existsSync(`${path}-wal`) || existsSync(`${path}-journal`)) return false
  const before = identity(path)
  if (before === null) return false
  if (stamp.db.settled !== undefined) return before === stamp.db.settled
  const now = dbState(path)
  if (now === undefined || now.size !== stamp.db.size || now.hash !== stamp.db.hash) return false
  if (identity(path) !== before) return false
  if (!racy([[path, before]], Date.now() - settleMs(ctimeNsOf(before)))) {
    stamp.db.settled = before
    writeStampFile(root, stamp)
  }
  return true
}

/**
 * The fast path: the output of a no-op `grail build` when the stamp in the project's home still holds,
 * after marking the build's blobs in use as the full path would; undefined sends the caller to the CLI.
 */
export function fastNoopBuild(argv: readonly string[]): string | undefined {
  if (!stampableArgv(argv)) return undefined
  const search = specSearch()
  if (search === undefined) return undefined
  const specFile = yamlSpec(search.dir)
  if (specFile === undefined) return undefined
  const root = homeRootFor(search.dir)
  let stamp: NoopStamp
  try {
    stamp = JSON.parse(readFileSync(join(root, STAMP_FILE), 'utf8')) as NoopStamp
  } catch {
    return undefined
  }
  if (stamp.format !== STAMP_FORMAT || stamp.specDir !== search.dir || stamp.specFile !== specFile)
    return undefined
  if (stamp.run !== runKey(argv)) return undefined
  // the dirs looked in on the way up (a new grail.yaml in one would be found first) are among the paths
  for (const [path, id] of stamp.paths) if (identityLike(path, id) !== id) return undefined
  if (!search.looked.every((d) => stamp.paths.some(([p]) => p === d))) return undefined
  if (!dbUnchanged(root, stamp)) return undefined
  if (staleWork(root)) return undefined
  // every reused blob is there and unchanged since it last hashed right; then marked in use (gc's grace)
  let checks: Record<string, string>
  try {
    checks = JSON.parse(readFileSync(stamp.blobChecks, 'utf8')) as Record<string, string>
  } catch {
    return undefined
  }
  for (const [digest, path] of stamp.blobs) if (fingerprint(path) !== checks[digest]) return undefined
  const now = new Date()
  for (const [digest, path] of stamp.blobs) {
    utimesSync(path, now, now)
    const fp = fingerprint(path)
    if (fp === undefined) return undefined
    checks[digest] = fp
  }
  const tmp = `${stamp.blobChecks}.${process.pid}.tmp`
  try {
    writeFileSync(tmp, JSON.stringify(checks))
    renameSync(tmp, stamp.blobChecks)
  } catch (err) {
    try {
      unlinkSync(tmp)
    } catch {}
    throw err
  }
  return stamp.stdout
}

/** The stamp's path in a home, and its removal (a full-path build replaces it, or leaves none). */
export function stampPath(root: string): string {
  return join(root, STAMP_FILE)
}

export function removeStamp(root: string): void {
  try {
    unlinkSync(stampPath(root))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

/**
 * Identities of what a copy step reads: each component of the source's path from `/` down, then every
 * entry beneath it (a new, removed or renamed file changes its directory). Undefined when too many.
 */
export function copyInputPaths(
  context: string,
  from: readonly string[],
  into: Map<string, string | null>,
): boolean {
  const ancestors = (p: string) => {
    const parts: string[] = []
    for (let d = p; ; d = dirname(d)) {
      parts.push(d)
      if (dirname(d) === d) break
    }
    return parts
  }
  const walk = (p: string): boolean => {
    if (into.size > MAX_ENTRIES) return false
    const id = identity(p)
    into.set(p, id)
    if (id === null) return true
    const st = lstatSync(p)
    if (!st.isDirectory()) return true
    for (const name of readdirSync(p)) {
      if (p === context && CONTEXT_EXCLUDED.includes(name)) continue
      if (!walk(join(p, name))) return false
    }
    return true
  }
  for (const f of from) {
    const abs = join(context, f)
    if (!isAbsolute(abs)) return false
    // above the context only where the path leads counts; the context and beneath it, everything
    for (const a of ancestors(abs))
      if (!into.has(a))
        into.set(a, a === context || a.startsWith(`${context}/`) ? identity(a) : placeIdentity(a))
    if (!walk(abs)) return false
  }
  return true
}

/** Whether any recorded path changed at or after `sinceMs` (its identity could not tell a later change). */
export function racy(paths: Iterable<[string, string | null]>, sinceMs: number): boolean {
  const since = BigInt(Math.floor(sinceMs)) * 1_000_000n
  for (const [, id] of paths) if (id !== null && !id.startsWith('w:') && ctimeNsOf(id) >= since) return true
  return false
}

/** The search for the spec from the cwd, for the writer (it records the dirs looked in). */
export function specSearchFromCwd(): { dir: string; looked: string[]; file: string | undefined } | undefined {
  const s = specSearch()
  return s && { ...s, file: yamlSpec(s.dir) }
}

/** Writes a stamp whole (temp file, rename), owner-only: it holds what the build printed. */
export function writeStampFile(root: string, stamp: NoopStamp): void {
  const path = stampPath(root)
  const tmp = `${path}.${process.pid}.tmp`
  try {
    writeFileSync(tmp, JSON.stringify(stamp), { mode: 0o600 })
    renameSync(tmp, path)
  } catch (err) {
    try {
      unlinkSync(tmp)
    } catch {}
    throw err
  }
}

export const STAMP_FORMAT_VERSION = STAMP_FORMAT
