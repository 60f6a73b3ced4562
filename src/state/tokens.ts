import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { GrailError } from '../errors.js'
import type { Db } from './db.js'
import { nowIso } from './db.js'
import { appendEvent } from './events.js'

/** What a token may do: `read` the API, or also `write` (apply, rollback, promote, revoke, recycle, pin). */
export type TokenScope = 'read' | 'write'

export const TOKEN_SCOPES: readonly TokenScope[] = ['read', 'write']

/** A token as state keeps it: never the token itself, only its name, scope and times. */
export interface TokenRecord {
  name: string
  scope: TokenScope
  createdAt: string
  revokedAt: string | null
  lastUsedAt: string | null
}

interface Row {
  name: string
  hash: string
  scope: TokenScope
  created_at: string
  revoked_at: string | null
  last_used_at: string | null
}

const fromRow = (r: Row): TokenRecord => ({
  name: r.name,
  scope: r.scope,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
  lastUsedAt: r.last_used_at,
})

/** Every token starts so: a leaked one is easy to find in a log or a repository (secret scanners). */
export const TOKEN_PREFIX = 'grail_'

/** The same rule as every other name Grail has (spec/schema-common.ts NAME_PATTERN). */
const TOKEN_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/

/** Checks a token name before it reaches state or an event: BAD_NAME naming the rule. */
export function checkTokenName(name: string): void {
  if (TOKEN_NAME.test(name)) return
  throw new GrailError('BAD_NAME', `token name ${JSON.stringify(name)} is not a name`, {
    hint: 'use lowercase letters, digits and "-" (starting with a letter or digit, at most 63), e.g. ci-deploy',
  })
}

/** The sha256 (hex) a token is stored as. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

/**
 * Creates a token: 32 random bytes shown as `grail_<base64url>`. The plaintext is returned here and
 * nowhere else; state keeps its sha256. A name in use by a live token is TOKEN_EXISTS; the name of a
 * revoked one is reused (its revocation stays in the event log).
 */
export function createToken(
  db: Db,
  opts: { name: string; scope: TokenScope },
): {
  token: string
  record: TokenRecord
} {
  checkTokenName(opts.name)
  if (!TOKEN_SCOPES.includes(opts.scope)) {
    throw new GrailError(
      'BAD_TOKEN_SCOPE',
      `token scope ${JSON.stringify(opts.scope)} is not read or write`,
      {
        hint: '--scope read (GET endpoints and /metrics) or --scope write (also apply, rollback, …)',
      },
    )
  }
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`
  const now = nowIso()
  db.transaction(() => {
    const old = db.prepare('SELECT revoked_at FROM tokens WHERE name = ?').get(opts.name) as
      | { revoked_at: string | null }
      | undefined
    if (old && old.revoked_at === null) {
      throw new GrailError('TOKEN_EXISTS', `a token named ${opts.name} exists`, {
        hint: `choose another name, or revoke it first: grail token revoke ${opts.name}`,
      })
    }
    db.prepare('DELETE FROM tokens WHERE name = ?').run(opts.name)
    db.prepare('INSERT INTO tokens (name, hash, scope, created_at) VALUES (?, ?, ?, ?)').run(
      opts.name,
      hashToken(token),
      opts.scope,
      now,
    )
    appendEvent(db, 'token.created', opts.name, { scope: opts.scope })
  }).immediate()
  return {
    token,
    record: { name: opts.name, scope: opts.scope, createdAt: now, revokedAt: null, lastUsedAt: null },
  }
}

/** Every token, live and revoked, by name. */
export function listTokens(db: Db): TokenRecord[] {
  return (db.prepare('SELECT * FROM tokens ORDER BY name').all() as Row[]).map(fromRow)
}

/** Revokes a token by name: every later request with it is refused (401). TOKEN_NOT_FOUND when none is live. */
export function revokeToken(db: Db, name: string): TokenRecord {
  checkTokenName(name)
  const now = nowIso()
  return db
    .transaction(() => {
      const row = db.prepare('SELECT * FROM tokens WHERE name = ?').get(name) as Row | undefined
      if (!row || row.revoked_at !== null) {
        throw new GrailError(
          'TOKEN_NOT_FOUND',
          row ? `token ${name} is already revoked` : `there is no token named ${name}`,
          { hint: 'see `grail token list`' },
        )
      }
      db.prepare('UPDATE tokens SET revoked_at = ? WHERE name = ?').run(now, name)
      appendEvent(db, 'token.revoked', name, { scope: row.scope })
      return fromRow({ ...row, revoked_at: now })
    })
    .immediate()
}

/**
 * The live token `presented` is, or undefined (unknown or revoked). Every stored hash is compared in
 * constant time, so neither the answer nor its timing tells how close a guess was. Writes nothing: a
 * request that is then refused leaves no trace in state (see touchToken).
 */
export function verifyToken(db: Db, presented: string): TokenRecord | undefined {
  const want = Buffer.from(hashToken(presented), 'hex')
  let found: Row | undefined
  for (const row of db.prepare('SELECT * FROM tokens').all() as Row[]) {
    const have = Buffer.from(row.hash, 'hex')
    if (have.length === want.length && timingSafeEqual(have, want) && row.revoked_at === null) found = row
  }
  return found ? fromRow(found) : undefined
}

/** How often last_used_at is written for a token in steady use (a scrape every 15 s writes once a minute). */
const LAST_USED_EVERY_MS = 60_000

/** Records that a token was used for a request it was allowed (at most once a minute per token). */
export function touchToken(db: Db, token: TokenRecord, now = Date.now()): void {
  const last = token.lastUsedAt === null ? 0 : Date.parse(token.lastUsedAt)
  if (now - last < LAST_USED_EVERY_MS) return
  db.prepare('UPDATE tokens SET last_used_at = ? WHERE name = ? AND revoked_at IS NULL').run(
    new Date(now).toISOString(),
    token.name,
  )
}
