import type { IncomingMessage, ServerResponse } from 'node:http'
import type { EventRecord } from '../../state/index.js'
import type { EventFeed } from '../context.js'
import { SECURITY_HEADERS } from './respond.js'

/** One event as a server-sent event: `id:` its id, `event: grail`, `data:` its JSON (one line). */
export function sseFrame(e: EventRecord): string {
  return `id: ${e.id}\nevent: grail\ndata: ${JSON.stringify(e)}\n\n`
}

/** The id a reconnecting client has seen (Last-Event-ID header, else `?lastEventId=`), or undefined. */
export function lastEventIdOf(req: IncomingMessage, query: URLSearchParams): number | undefined {
  const raw = req.headers['last-event-id'] ?? query.get('lastEventId') ?? undefined
  if (raw === undefined || Array.isArray(raw)) return undefined
  return /^\d{1,15}$/.test(raw) ? Number(raw) : undefined
}

/** The open event streams of a server, so that closing the server ends them. */
export class EventStreams {
  readonly #open = new Set<() => void>()

  /**
   * Streams the event log to `res` as text/event-stream: first what was appended after `after` (a
   * reconnect's Last-Event-ID), then every new event as the feed delivers it, each once and in id
   * order; a comment line every `heartbeatMs` keeps proxies from closing an idle stream.
   */
  open(feed: EventFeed, res: ServerResponse, opts: { after: number | undefined; heartbeatMs: number }): void {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    })
    res.write('retry: 2000\n\n')
    let sent = opts.after ?? 0
    const send = (e: EventRecord): void => {
      if (e.id <= sent) return
      sent = e.id
      res.write(sseFrame(e))
    }
    // catch-up and subscription happen in one turn of the event loop: the feed delivers only from a
    // timer, so nothing appended in between is missed, and `sent` drops what both would deliver
    if (opts.after !== undefined) {
      for (;;) {
        const batch = feed.since(sent)
        for (const e of batch) send(e)
        if (batch.length < 500) break
      }
    }
    const unsubscribe = feed.subscribe(send)
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), opts.heartbeatMs)
    const end = (): void => {
      clearInterval(heartbeat)
      unsubscribe()
      this.#open.delete(end)
      if (!res.writableEnded) res.end()
    }
    this.#open.add(end)
    res.on('close', end)
  }

  /** Ends every open stream (the server is closing). */
  closeAll(): void {
    for (const end of [...this.#open]) end()
  }

  get size(): number {
    return this.#open.size
  }
}
