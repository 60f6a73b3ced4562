import type { EventRecord } from '../../../src/state/events.js'
import { API, getJson } from '../api.js'
import type { Page, PageFactory } from '../app.js'
import { h, replace } from '../dom.js'
import { formatTime } from '../format.js'
import { errorBox, table } from './common.js'

const PAGE = 50

interface EventsPage {
  events: EventRecord[]
  next: number | null
}

/**
 * The event log, newest first, PAGE at a time (older pages on demand); new events arrive at the top
 * live, with a filter on kind, subject and actor.
 */
export const eventsPage: PageFactory = (root, app): Page => {
  const events: EventRecord[] = []
  let next: number | null = null
  let error: unknown
  let loaded = false
  let filter = ''
  let fresh = new Set<number>()

  const list = h('div', { class: 'events' })
  const more = h(
    'button',
    { type: 'button', 'data-action': 'older', onclick: () => void older() },
    'Older events',
  )
  const search = h('input', {
    type: 'search',
    placeholder: 'filter: kind, subject, actor',
    'aria-label': 'filter',
  })
  search.addEventListener('input', () => {
    filter = search.value.trim().toLowerCase()
    render()
  })
  replace(root, h('div', { class: 'toolbar' }, search), list, h('div', { class: 'buttons' }, more))

  const fetchPage = (before: number | null): Promise<EventsPage> =>
    getJson<EventsPage>(
      `${API}/events?${new URLSearchParams({ limit: String(PAGE), ...(before !== null ? { before: String(before) } : {}) })}`,
    )

  const older = async (): Promise<void> => {
    if (next === null) return
    more.disabled = true
    try {
      const page = await fetchPage(next)
      events.push(...page.events.filter((e) => !events.some((x) => x.id === e.id)))
      next = page.next
    } catch (err) {
      error = err
    }
    more.disabled = false
    render()
  }

  const render = (): void => {
    more.hidden = next === null
    const shown = filter
      ? events.filter((e) => `${e.kind} ${e.subject} ${e.actor}`.toLowerCase().includes(filter))
      : events
    replace(
      list,
      error ? errorBox(error) : null,
      !loaded
        ? h('p', { class: 'muted' }, 'Loading…')
        : shown.length === 0
          ? h('p', { class: 'muted' }, 'No events.')
          : table(
              ['#', 'at', 'kind', 'subject', 'actor', 'data'],
              shown.map((e) =>
                h(
                  'tr',
                  { 'data-event': e.id, class: fresh.has(e.id) ? 'fresh' : '' },
                  h('td', null, String(e.id)),
                  h('td', null, formatTime(e.at)),
                  h('td', null, h('code', null, e.kind)),
                  h('td', null, e.subject),
                  h('td', null, e.actor),
                  h('td', { class: 'data' }, dataText(e.data)),
                ),
              ),
              'events',
            ),
    )
  }

  return {
    topics: ['events'],
    async refresh() {
      // the first page once; after that, live events arrive through onEvent
      if (loaded) return
      try {
        const page = await fetchPage(null)
        events.splice(0, events.length, ...page.events)
        next = page.next
        error = undefined
        app.recovered()
      } catch (err) {
        error = err
        app.failed(err)
      }
      loaded = true
      render()
    },
    onEvent(e) {
      if (!loaded || events.some((x) => x.id === e.id)) return
      events.unshift(e)
      events.sort((a, b) => b.id - a.id)
      fresh = new Set([...fresh, e.id])
      render()
    },
  }
}

/** An event's data on one line, `key=value`, values as JSON. */
export function dataText(data: Record<string, unknown>): string {
  return Object.entries(data ?? {})
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ')
}
