// AIDE (Debian's `aide`) as bench/drift's peer: one config and database per checked rootfs, its commands
// as data, and a parser for the parts of its report the bench checks (summary counts, entry paths).
import { access, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Command, runCommand } from '../../src/util/exec.js'

/**
 * What AIDE compares, chosen to match what Grail's diff can see: file type, permissions, owner, group,
 * size, symlink target and a SHA-256 of the content. Left out: mtime, ctime, atime, inode, link count,
 * block count, ACLs, xattrs, SELinux labels (a copy-up into the overlay upper dir changes the inode and
 * ctime of an otherwise identical file, and Grail compares none of these either).
 */
export const AIDE_ATTRIBUTES = 'ftype+p+u+g+s+l+sha256'

/** AIDE's exit codes at or above this are errors; below, a bit set: 1 added, 2 removed, 4 changed. */
const AIDE_ERROR = 14

export interface AideSetup {
  config: string
  db: string
  rootfs: string
}

/** AIDE selection lines are regular expressions: the rootfs path, matched literally. */
function literalRegex(path: string): string {
  if (/\s/.test(path)) throw new Error(`AIDE cannot select a path with white space: ${path}`)
  return path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** The config text: databases in `dir`, report on stdout, `workers` hashing threads, one rule for `rootfs`. */
export function aideConfig(o: { dir: string; rootfs: string; workers: number }): string {
  return [
    `database_in=file:${join(o.dir, 'aide.db')}`,
    `database_out=file:${join(o.dir, 'aide.db.new')}`,
    'gzip_dbout=no',
    `num_workers=${o.workers}`,
    'report_url=stdout',
    `GrailLike = ${AIDE_ATTRIBUTES}`,
    `${literalRegex(o.rootfs)} GrailLike`,
    '',
  ].join('\n')
}

/** Writes the config for `rootfs` into `dir` (AIDE's work dir, outside the rootfs). */
export async function writeAideConfig(o: {
  dir: string
  rootfs: string
  workers: number
}): Promise<AideSetup> {
  const config = join(o.dir, `aide-${o.workers}.conf`)
  await writeFile(config, aideConfig(o))
  return { config, db: join(o.dir, 'aide.db'), rootfs: o.rootfs }
}

export function aideCommand(setup: AideSetup, mode: 'init' | 'check'): Command {
  return { file: 'aide', args: [`--config=${setup.config}`, `--${mode}`] }
}

/** Builds the baseline database of the rootfs as it is now (`aide --init`, then the new db moved in place). */
export async function aideInit(setup: AideSetup): Promise<void> {
  await runCommand(aideCommand(setup, 'init'))
  await rename(`${setup.db}.new`, setup.db)
}

export interface AideReport {
  /** AIDE's exit code: 0 no changes, else bits 1 added, 2 removed, 4 changed */
  code: number
  total: number
  added: string[]
  removed: string[]
  changed: string[]
}

/** Runs `aide --check`; changes are not an error, AIDE's own errors (exit ≥ 14) are. */
export async function aideCheck(setup: AideSetup): Promise<AideReport> {
  const res = await runCommand(aideCommand(setup, 'check'), { allowFailure: true })
  if (res.code >= AIDE_ERROR) {
    throw new Error(`aide --check exited ${res.code}:\n${res.stderr.toString()}${res.stdout.toString()}`)
  }
  return { code: res.code, ...parseAideReport(res.stdout.toString(), setup.rootfs) }
}

const SECTIONS = { 'Added entries:': 'added', 'Removed entries:': 'removed', 'Changed entries:': 'changed' }

/**
 * The entry count and the entries of each section of an `aide --check` report, as paths inside the
 * rootfs. Entry lines look like `f+++++++++++++++++: /path` (added) or `f > ...     H     : /path`.
 */
export function parseAideReport(text: string, rootfs: string): Omit<AideReport, 'code'> {
  const out: Omit<AideReport, 'code'> = { total: 0, added: [], removed: [], changed: [] }
  let section: 'added' | 'removed' | 'changed' | undefined
  for (const line of text.split('\n')) {
    const total = /^\s*Total number of entries:\s*(\d+)/.exec(line)
    if (total) out.total = Number(total[1])
    if (line in SECTIONS) section = SECTIONS[line as keyof typeof SECTIONS] as typeof section
    else if (line.startsWith('Detailed information')) section = undefined
    const entry = section && /^[^:]*: (\/.*)$/.exec(line)
    if (section && entry?.[1]?.startsWith(rootfs)) out[section].push(entry[1].slice(rootfs.length) || '/')
  }
  return out
}

/** AIDE's peak RSS in KiB for one `--check`, from GNU time, or undefined when /usr/bin/time is missing. */
export async function aidePeakRssKiB(setup: AideSetup, scratch: string): Promise<number | undefined> {
  try {
    await access('/usr/bin/time')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  const out = join(scratch, 'aide-time.txt')
  const cmd = aideCommand(setup, 'check')
  await runCommand(
    { file: '/usr/bin/time', args: ['-f', '%M', '-o', out, cmd.file, ...cmd.args] },
    {
      allowFailure: true,
    },
  )
  return Number((await readFile(out, 'utf8')).trim().split('\n').at(-1))
}

/** The installed AIDE's version, e.g. `0.18.3`. */
export async function aideVersion(): Promise<string> {
  const res = await runCommand({ file: 'aide', args: ['--version'] })
  const text = res.stdout.toString() + res.stderr.toString()
  const version = /AIDE ([\d.]+)/.exec(text)?.[1]
  if (!version) throw new Error(`aide --version printed no version: ${text}`)
  return version
}
