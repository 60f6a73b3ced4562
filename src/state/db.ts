import { existsSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { GrailError } from '../errors.js'
import { PRIVATE_DIR_MODE, tightenHomeSync } from '../util/private-fs.js'
import { damagedState, isCorruption, refuseStartingOver } from './guard.js'
import { MIGRATIONS } from './migrations.js'

export type Db = Database.Database

let addon: string | null | undefined

/**
 * better-sqlite3's native addon, by path: its own lookup (the `bindings` package: the caller's file from
 * a stack trace, then up to a dozen candidate paths, each a failed require) cost every command ~2 ms. Null
 * (its own lookup then) when the addon is in neither place a build of better-sqlite3 puts it.
 */
function nativeBinding(): string | null {
  if (addon === undefined) {
    // Grail's own node_modules first (dist/state/ or src/state/ are two levels down): no resolution
    const own = fileURLToPath(
      new URL('../../node_modules/better-sqlite3/build/Release/better_sqlite3.node', import.meta.url),
    )
    if (existsSync(own)) addon = own
    else {
      const pkg = dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json'))
      addon =
        ['Release', 'Debug']
          .map((d) => join(pkg, 'build', d, 'better_sqlite3.node'))
          .find((p) => existsSync(p)) ?? null
    }
  }
  return addon
}

export interface OpenDbOptions {
  /** create an empty state even where the home holds what an earlier one recorded (`grail state reset`) */
  startOver?: boolean
}

/**
 * Opens (creating if needed) the project's state database in WAL mode and brings its schema up to date.
 * A database written by a newer Grail is refused rather than guessed at; so is a damaged one (checked
 * with `PRAGMA quick_check`: about 3 ms for a typical state, 40 ms for one of 9 MB and 50,000 events),
 * and a missing or empty one where instances, containers, proxies or images show that the project has
 * run before: Grail never starts over on an empty state by itself.
 */
export function openDb(file: string, opts: OpenDbOptions = {}): Db {
  mkdirSync(dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE })
  if (!opts.startOver) refuseStartingOver(file)
  let db: Db | undefined
  try {
    const binding = nativeBinding()
    db = new Database(file, binding === null ? {} : { nativeBinding: binding })
    db.pragma('busy_timeout = 5000')
    useWal(db, file)
    // env values and deploy files live in releases: the database and its WAL are owner-only
    tightenHomeSync(dirname(file))
    db.pragma('synchronous = NORMAL')
    db.pragma('foreign_keys = ON')
    const check = db.pragma('quick_check(1)', { simple: true })
    if (check !== 'ok') throw damagedState(file, String(check))
    migrate(db, file)
    return db
  } catch (err) {
    db?.close()
    if (isCorruption(err)) throw damagedState(file, err.message)
    if ((err as { code?: unknown }).code === 'SQLITE_CANTOPEN') {
      throw new GrailError('STATE_UNREADABLE', `cannot open ${file}: ${(err as Error).message}`, {
        hint: 'it must be a readable and writable file (not a directory) in a writable directory',
      })
    }
    throw err
  }
}

/**
 * Puts a new database in WAL mode. The switch needs a lock the busy handler does not wait for, so two
 * commands opening a new state at once (two `grail up`) would fail with "database is locked": the
 * loser waits and looks again (the winner has usually switched it by then), for as long as the busy
 * timeout. An existing WAL database is only read, never switched.
 */
function useWal(db: Db, file: string): void {
  const deadline = Date.now() + 5000
  for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
    try {
      if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL')
      return
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() > deadline) {
        if ((err as { code?: unknown }).code === 'SQLITE_BUSY') {
          throw new GrailError('STATE_BUSY', `${file} stayed locked by another command for 5 s`, {
            hint: 'wait for the other grail command to finish, then run this one again',
          })
        }
        throw err
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause)
    }
  }
}

function migrate(db: Db, file: string): void {
  const current = db.pragma('user_version', { simple: true }) as number
  if (current > MIGRATIONS.length) {
    throw new GrailError(
      'STATE_TOO_NEW',
      `${file} has schema version ${current}, this Grail knows ${MIGRATIONS.length}`,
      { hint: 'upgrade Grail; an older version must not write to state it does not understand' },
    )
  }
  if (current === MIGRATIONS.length) return
  const apply = db.transaction(() => {
    const again = db.pragma('user_version', { simple: true }) as number
    for (let i = again; i < MIGRATIONS.length; i++) {
      db.exec(MIGRATIONS[i] as string)
      db.pragma(`user_version = ${i + 1}`)
    }
  })
  apply.immediate()
}

/** Current time as an ISO string; one place so tests can reason about it. */
export function nowIso(): string {
  return new Date().toISOString()
}
