import type { Logger } from 'pino'
import { GrailError } from '../errors.js'
import type { openEnvironment } from '../engine/environment.js'
import type { GrailHome } from '../home.js'
import type { Project } from '../spec/types.js'
import type { Db, EventRecord } from '../state/index.js'

/** An environment opened for the engine (state, provider, routers, store). */
export type OpenedEnvironment = Awaited<ReturnType<typeof openEnvironment>>

/** How one reconcile pass of an environment went, for /metrics and the API. */
export interface ReconcileStats {
  environment: string
  /** passes since the daemon started */
  passes: number
  /** ISO time the last pass ended, or null before the first */
  lastAt: string | null
  /** how long the last pass took */
  lastMs: number
  /** sum of every pass's duration (a Prometheus summary's `_sum`) */
  totalMs: number
  /** actions applied since the daemon started, by cause (`missing`, `drift`, `recycle`, …) */
  applied: Record<string, number>
  /** rollouts (deploy actions) since the daemon started, by outcome */
  rollouts: { ok: number; failed: number }
  /** the last pass's error, if it failed */
  lastError: string | null
}

/**
 * What `grail serve` shares with the HTTP API, the dashboard and the patch pipeline: the project (as
 * last loaded), its state, the environments it reconciles, the logger, the event feed.
 */
export interface ServerContext {
  /** the project as last loaded from its spec (the daemon reloads it when grail.yaml changes) */
  project(): Project
  home: GrailHome
  /** the daemon's connection to state.db; other processes (the CLI) write to it too */
  db: Db
  /** the environments this daemon reconciles */
  environments: string[]
  log: Logger
  events: EventFeed
  /**
   * Opens `env` and runs `fn` with it. With `lock`, the apply lock is taken first and released after:
   * when another process holds it this fails at once with GrailError LOCKED (the API answers 409).
   */
  withEnvironment<T>(
    env: string,
    opts: { lock: boolean },
    fn: (a: OpenedEnvironment) => Promise<T>,
  ): Promise<T>
  /** asks the environment's reconciler for a pass as soon as it can (after an API write, an event) */
  reconcileSoon(env: string): void
  /** per-environment reconcile figures */
  stats(): ReconcileStats[]
}

/**
 * The event log as a feed: every event any process appends to state.db reaches the subscribers, in id
 * order, within `pollMs`. The database is the only channel, so CLI commands run by hand show up too.
 */
export class EventFeed {
  private last: number
  private readonly subscribers = new Set<(e: EventRecord) => void>()
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly db: Db,
    private readonly pollMs = 250,
  ) {
    const row = db.prepare('SELECT MAX(id) AS id FROM events').get() as { id: number | null }
    this.last = row.id ?? 0
  }

  /** Hears every event appended after now; returns the unsubscribe function. */
  subscribe(fn: (e: EventRecord) => void): () => void {
    this.subscribers.add(fn)
    this.start()
    return () => {
      this.subscribers.delete(fn)
    }
  }

  /** Events with an id above `after`, oldest first, at most `limit` (for Last-Event-ID catch-up). */
  since(after: number, limit = 500): EventRecord[] {
    const rows = this.db
      .prepare('SELECT * FROM events WHERE id > ? ORDER BY id ASC LIMIT ?')
      .all(after, limit) as Array<Omit<EventRecord, 'data'> & { data: string }>
    return rows.map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }))
  }

  /** Delivers what was appended since the last poll (also called by the daemon right after it writes). */
  poll(): void {
    for (;;) {
      const batch = this.since(this.last)
      for (const e of batch) {
        this.last = e.id
        for (const fn of this.subscribers) {
          try {
            fn(e)
          } catch {
            // one broken subscriber (a closed SSE stream) does not stop the others
          }
        }
      }
      if (batch.length < 500) return
    }
  }

  private start(): void {
    if (this.timer) return
    this.timer = setInterval(() => this.poll(), this.pollMs)
    this.timer.unref()
  }

  close(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    this.subscribers.clear()
  }
}

/** An error as the daemon logs it and records it in an event: code, message and hint of a GrailError. */
export function errorFields(err: unknown): Record<string, unknown> {
  if (err instanceof GrailError) return { code: err.code, message: err.message, hint: err.hint }
  return { message: err instanceof Error ? err.message : String(err) }
}
