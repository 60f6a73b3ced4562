import { GrailError } from '../../errors.js'

/** Why a name taken from an archive cannot be used as a relative path; `undefined` when it can. */
export type PathProblem = 'empty name' | 'NUL byte in name' | 'absolute path' | "'..' component"

/**
 * Normalises an archive name to a relative POSIX path: './' prefixes, duplicate and trailing slashes go.
 * Returns '' for the root ('.', './') and a problem for names that could leave the extraction root, so
 * callers decide between refusing and skipping. Never touches the filesystem.
 */
export function normaliseEntryPath(name: string): { path: string } | { problem: PathProblem } {
  if (name === '') return { problem: 'empty name' }
  if (name.includes('\0')) return { problem: 'NUL byte in name' }
  if (name.startsWith('/')) return { problem: 'absolute path' }
  const parts: string[] = []
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') return { problem: "'..' component" }
    parts.push(part)
  }
  return { path: parts.join('/') }
}

/**
 * Orders paths by their UTF-8 bytes, component by component, so a directory comes right before its own
 * children ('a', 'a/b', 'a-b' rather than 'a', 'a-b', 'a/b'): the order GNU tar and Docker use. Replacing
 * '/' by NUL (which no name contains) turns that into plain byte order.
 */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(sortKey(a), sortKey(b))
}

/** Sorts a copy of `items` by their path with `comparePaths`, computing each key once. */
export function sortByPath<T>(items: readonly T[], pathOf: (item: T) => string): T[] {
  return items
    .map((item) => ({ item, key: sortKey(pathOf(item)) }))
    .sort((x, y) => Buffer.compare(x.key, y.key))
    .map((x) => x.item)
}

function sortKey(path: string): Buffer {
  return Buffer.from(path.replaceAll('/', '\0'))
}

/** The parent of a relative path ('' for top-level names). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/')
  return i === -1 ? '' : path.slice(0, i)
}

/** The last component of a relative path. */
export function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

/** Joins a relative directory ('' for the root) and a name. */
export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`
}

/** True when `path` is `dir` itself or lies below it. */
export function isSameOrBelow(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`)
}

/**
 * The user error for an archive that tries to escape its root or to smuggle in something Grail does not
 * write: it names the archive and the entry exactly as it appears in the archive.
 */
export function unsafeTar(label: string, entryName: string, reason: string): GrailError {
  return new GrailError('UNSAFE_TAR', `${label}: refusing entry "${entryName}": ${reason}`, {
    hint: 'the archive tries to write outside its root or contains entries Grail will not create; do not use it',
  })
}
