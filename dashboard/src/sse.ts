/**
 * A server-sent event stream read with fetch, not EventSource: EventSource cannot send an Authorization
 * header, and a token must never go into a URL. The parser follows the WHATWG event-stream format.
 */

export interface SseMessage {
  id: string | undefined
  event: string
  data: string
}

/** Turns chunks of an event stream into messages; keeps the unfinished line and event between chunks. */
export class SseParser {
  private buffer = ''
  private data: string[] = []
  private event = ''
  private id: string | undefined
  /** the last `id:` seen, which a reconnect sends as Last-Event-ID */
  lastId: string | undefined

  /** Feeds a chunk; returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    this.buffer += chunk
    const out: SseMessage[] = []
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer)
      // a lone \r at the end may be the first half of \r\n
      if (!m || (m[0] === '\r' && m.index === this.buffer.length - 1)) break
      const line = this.buffer.slice(0, m.index)
      this.buffer = this.buffer.slice(m.index + m[0].length)
      const msg = this.line(line)
      if (msg) out.push(msg)
    }
    return out
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') {
      const msg =
        this.data.length > 0
          ? { id: this.id, event: this.event || 'message', data: this.data.join('\n') }
          : undefined
      this.data = []
      this.event = ''
      return msg
    }
    if (line.startsWith(':')) return undefined
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') this.data.push(value)
    else if (field === 'event') this.event = value
    else if (field === 'id' && !value.includes('\0')) {
      this.id = value
      this.lastId = value
    }
    return undefined
  }
}
