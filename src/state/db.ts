import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { GrailError } from '../errors.js'
import { PRIVATE_DIR_MODE, tightenHomeSync } from '../util/private-fs.js'
import { MIGRATIONS } from './migrations.js'

export type Db = Database.Database

/**
 * Opens (creating if needed) the project's state database in WAL mode and brings its schema up to date.
 * A database written by a newer Grail is refused rather than guessed at.
 */
export function openDb(file: string): Db {
  mkdirSync(dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE })
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  // env values and deploy files live in releases: the database and its WAL are owner-only
  tightenHomeSync(dirname(file))
  db.pragma('synchronous = NORMAL')
  db.pragma('foreign_keys = ON')
  db.pragma('busy_timeout = 5000')
  migrate(db, file)
  return db
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
