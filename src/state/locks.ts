import { hostname } from 'node:os'
import { GrailError } from '../errors.js'
import { pidAlive } from '../util/mounts.js'
import type { Db } from './db.js'
import { nowIso } from './db.js'
import { appendEvent, currentActor } from './events.js'

export interface LockHolder {
  holder: string
  pid: number
  host: string
  acquiredAt: string
}

/**
 * Takes a named lock (one writer at a time, e.g. `apply`) or fails at once naming who holds it. A lock
 * whose holder process is gone (same host, pid not alive) is stale and is taken over, with an event.
 */
export function acquireLock(db: Db, name: string, opts: { pid?: number; holder?: string } = {}): LockHolder {
  const me: LockHolder = {
    holder: opts.holder ?? currentActor(),
    pid: opts.pid ?? process.pid,
    host: hostname(),
    acquiredAt: nowIso(),
  }
  const take = db.transaction(() => {
    const row = db.prepare('SELECT holder, pid, host, acquired_at FROM locks WHERE name = ?').get(name) as
      | { holder: string; pid: number; host: string; acquired_at: string }
      | undefined
    if (row) {
      const stale = row.host === me.host && !pidAlive(row.pid)
      if (!stale) {
        throw new GrailError(
          'LOCKED',
          `another ${name} is running: held by ${row.holder} (pid ${row.pid} on ${row.host}) since ${row.acquired_at}`,
          {
            hint: `wait for it to finish; if that process is gone from ${row.host}, the next ${name} takes the lock over`,
          },
        )
      }
      appendEvent(db, 'lock.stale', name, { holder: row.holder, pid: row.pid, since: row.acquired_at })
      db.prepare('DELETE FROM locks WHERE name = ?').run(name)
    }
    db.prepare('INSERT INTO locks (name, holder, pid, host, acquired_at) VALUES (?, ?, ?, ?, ?)').run(
      name,
      me.holder,
      me.pid,
      me.host,
      me.acquiredAt,
    )
  })
  take.immediate()
  return me
}

/** Releases a lock this process holds; a lock held by someone else is left alone. */
export function releaseLock(db: Db, name: string, pid = process.pid): void {
  db.prepare('DELETE FROM locks WHERE name = ? AND pid = ? AND host = ?').run(name, pid, hostname())
}

/**
 * Takes a named lock, waiting while another live process holds it (a build of the same image, a
 * concurrent `up`), instead of failing at once. `onWait` hears about the holder once, when waiting starts.
 * A holder that dies is taken over as in acquireLock.
 */
export async function waitForLock(
  db: Db,
  name: string,
  opts: { onWait?: (held: string) => void; pollMs?: number } = {},
): Promise<LockHolder> {
  let told = false
  for (;;) {
    try {
      return acquireLock(db, name)
    } catch (err) {
      if (!(err instanceof GrailError) || err.code !== 'LOCKED') throw err
      if (!told) opts.onWait?.(err.message)
      told = true
    }
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 200))
  }
}
