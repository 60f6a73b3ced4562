import { readFileSync, readdirSync, statSync } from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import { GrailError, isErrno } from '../errors.js'
import { homeAt } from '../home.js'

/** The command that starts a project over on an empty state, stopping what the old state ran. */
export const RESET_COMMAND = 'grail state reset --force'

function entries(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => !n.startsWith('.'))
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return []
    throw err
  }
}

function imagesIn(ociDir: string): number {
  try {
    const index = JSON.parse(readFileSync(join(ociDir, 'index.json'), 'utf8')) as { manifests?: unknown[] }
    return index.manifests?.length ?? 0
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 0
    // an unreadable index is still an image layout someone built
    if (err instanceof SyntaxError) return 1
    throw err
  }
}

/**
 * What a Grail home beside `dbFile` holds that only its state database explains: instance bundles,
 * runc containers, proxies and images. Empty for a project that never ran anything.
 */
export function stateLeftovers(dbFile: string): string[] {
  const home = homeAt(dirname(dbFile))
  const at = (p: string) => relative(dirname(home.root), p)
  const found: string[] = []
  const count = (n: number, what: string, where: string) => {
    if (n > 0) found.push(`${n} ${what}${n === 1 ? '' : 's'} in ${at(where)}`)
  }
  count(entries(home.instances).length, 'instance bundle', home.instances)
  count(entries(home.runcRoot).length, 'runc container', home.runcRoot)
  count(entries(join(home.root, 'proxy')).length, 'proxy', join(home.root, 'proxy'))
  count(imagesIn(home.oci), 'image', home.oci)
  return found
}

function sizeOf(file: string): number | undefined {
  try {
    return statSync(file).size
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined
    throw err
  }
}

/**
 * Refuses to create a state database where one is missing or empty while the home still holds what an
 * earlier state recorded: starting over would forget running instances, the image catalog and the
 * event log without a word. A home with nothing in it (a new project) passes.
 */
export function refuseStartingOver(dbFile: string): void {
  const size = sizeOf(dbFile)
  if (size !== undefined && size > 0) return
  const left = stateLeftovers(dbFile)
  if (left.length === 0) return
  const what = size === undefined ? 'is missing' : 'is empty (0 bytes)'
  throw new GrailError(
    'STATE_MISSING',
    `${dbFile} ${what}, but this project has run before: its instances, catalog and events are not known`,
    {
      details: left,
      hint: `restore ${basename(dbFile)} from a backup, or run \`${RESET_COMMAND}\` to stop what runs and start over with an empty state (images are kept)`,
    },
  )
}

/** The user error for a state database SQLite cannot read, naming it and the ways back. */
export function damagedState(dbFile: string, reason: string): GrailError {
  return new GrailError('STATE_DAMAGED', `${dbFile} is damaged: ${reason}`, {
    hint: `restore it (with its -wal file, if any) from a backup, or run \`${RESET_COMMAND}\`: it keeps the damaged file beside it, stops what runs and starts over with an empty state (images are kept)`,
  })
}

/** SQLite's way of saying a file is not a database or is corrupt (better-sqlite3's `SqliteError.code`). */
export function isCorruption(err: unknown): err is Error {
  const code = (err as { code?: unknown } | null)?.code
  return (
    err instanceof Error &&
    typeof code === 'string' &&
    (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB' || code === 'SQLITE_IOERR_SHORT_READ')
  )
}
