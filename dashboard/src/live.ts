import type { EventRecord } from '../../src/state/events.js'
import { API } from './api.js'
import { SseParser } from './sse.js'
import { readToken } from './tokens.js'

export type LiveState = 'connecting' | 'live' | 'retrying' | 'unauthorized'

/** What the dashboard shows that an event can change, so that a page refetches only what it shows. */
export type Topic = 'status' | 'drift' | 'images' | 'outdated' | 'hotfixes' | 'events'

/**
 * The topics an event touches, from its kind (`instance.replaced`, `reconcile.start`, `image.revoked`,
 * …). The event log itself is touched by every event.
 */
export function topicsOf(kind: string): Set<Topic> {
  const topics = new Set<Topic>(['events'])
  const family = kind.split('.')[0] ?? ''
  const add = (...t: Topic[]) => {
    for (const x of t) topics.add(x)
  }
  switch (family) {
    case 'instance':
    case 'reconcile':
    case 'environment':
    case 'apply':
    case 'api':
    case 'serve':
      add('status', 'drift', 'hotfixes')
      break
    case 'release':
      add('status', 'images')
      break
    case 'hotfix':
      add('hotfixes', 'drift', 'status')
      break
    case 'drift':
      add('drift', 'status')
      break
    case 'image':
    case 'capture':
    case 'gc':
      add('images', 'status')
      break
    case 'patch':
      add('images', 'outdated', 'status')
      break
    default:
      // an event of a kind this page does not know: refetch what is on screen
      add('status', 'drift', 'images', 'hotfixes')
  }
  return topics
}

/**
 * Follows /api/v1/events/stream, calling `onEvent` for each event and `onState` when the connection
 * changes; reconnects with Last-Event-ID (1 s, doubling to 15 s) so no event is missed. Returns stop.
 */
export function followEvents(onEvent: (e: EventRecord) => void, onState: (s: LiveState) => void): () => void {
  let stopped = false
  let controller: AbortController | undefined
  let lastId: string | undefined
  let delay = 1000

  const connect = async (): Promise<void> => {
    onState('connecting')
    controller = new AbortController()
    const token = readToken()
    try {
      const res = await fetch(`${API}/events/stream`, {
        signal: controller.signal,
        cache: 'no-store',
        credentials: 'omit',
        headers: {
          Accept: 'text/event-stream',
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
          ...(lastId ? { 'Last-Event-ID': lastId } : {}),
        },
      })
      if (res.status === 401 || res.status === 403) {
        onState('unauthorized')
        return
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`)
      onState('live')
      delay = 1000
      const parser = new SseParser()
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        for (const msg of parser.push(value)) {
          if (parser.lastId !== undefined) lastId = parser.lastId
          if (msg.event !== 'grail') continue
          try {
            onEvent(JSON.parse(msg.data) as EventRecord)
          } catch {
            // a message that is not an event record: nothing to show
          }
        }
      }
    } catch {
      if (stopped) return
    }
    if (stopped) return
    onState('retrying')
    setTimeout(() => void connect(), delay)
    delay = Math.min(delay * 2, 15_000)
  }

  void connect()
  return () => {
    stopped = true
    controller?.abort()
  }
}
