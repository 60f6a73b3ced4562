import type { EventRecord } from '../../src/state/events.js'
import type { ActionSpec } from './actions.js'
import { openAction } from './actions.js'
import { ApiError, apiPath, getJson } from './api.js'
import type { App, Page, PageFactory } from './app.js'
import { h, replace } from './dom.js'
import { followEvents, type LiveState, type Topic, topicsOf } from './live.js'
import { driftPage } from './pages/drift.js'
import { eventsPage } from './pages/events.js'
import { fleetPage } from './pages/fleet.js'
import { hotfixesPage } from './pages/hotfixes.js'
import { imagesPage } from './pages/images.js'
import type { EnvironmentSummary } from './shapes.js'
import { getToken, setToken } from './tokens.js'

const PAGES: Record<string, { title: string; make: PageFactory }> = {
  fleet: { title: 'Fleet', make: fleetPage },
  images: { title: 'Images', make: imagesPage },
  drift: { title: 'Drift', make: driftPage },
  hotfixes: { title: 'Hotfixes', make: hotfixesPage },
  events: { title: 'Events', make: eventsPage },
}

const byId = (id: string): HTMLElement => {
  const el = document.getElementById(id)
  if (!el) throw new Error(`index.html has no #${id}`)
  return el
}

const main = byId('page')
const banner = byId('banner')
const live = byId('live')

let environments: Promise<EnvironmentSummary[]> | undefined
let current: { name: string; page: Page; poll: number | undefined } | undefined
let pendingTopics = new Set<Topic>()
let eventTimer: number | undefined

const app: App = {
  environments() {
    environments ??= getJson<EnvironmentSummary[]>(apiPath('environments')).catch((err: unknown) => {
      environments = undefined
      throw err
    })
    return environments
  },
  act(spec: ActionSpec) {
    openAction(spec, () => {
      void current?.page.refresh()
    })
  },
  failed(err: unknown) {
    banner.hidden = false
    if (err instanceof ApiError && err.status === 401)
      replace(
        banner,
        h(
          'div',
          { class: 'error' },
          'This server needs a read token to show anything (it does not run with --insecure-read). ',
          h('button', { type: 'button', onclick: openTokens }, 'Enter a token'),
        ),
      )
    else if (err instanceof ApiError)
      replace(
        banner,
        h(
          'div',
          { class: 'error' },
          `${err.status || 'error'} ${err.code}: ${err.message}`,
          err.hint ? ` (${err.hint})` : '',
        ),
      )
    else replace(banner, h('div', { class: 'error' }, String(err)))
  },
  recovered() {
    banner.hidden = true
    banner.replaceChildren()
  },
}

/** Shows the page the URL's hash names (`#/images`), the fleet by default. */
function route(): void {
  const asked = /^#\/([a-z]+)/.exec(location.hash)?.[1] ?? 'fleet'
  const key = Object.hasOwn(PAGES, asked) ? asked : 'fleet'
  const def = PAGES[key] as (typeof PAGES)[string]
  if (current?.poll !== undefined) clearInterval(current.poll)
  const root = h('div', { class: `page page-${key}`, 'data-page': key })
  replace(main, root)
  const page = def.make(root, app)
  const poll =
    page.pollMs !== undefined
      ? window.setInterval(() => {
          if (!document.hidden) void page.refresh(new Set(page.pollTopics ?? page.topics))
        }, page.pollMs)
      : undefined
  current = { name: key, page, poll }
  document.title = `${def.title} · Grail`
  for (const a of Array.from(document.querySelectorAll<HTMLAnchorElement>('nav a')))
    a.classList.toggle('current', a.dataset.page === key)
  void page.refresh()
}

const LIVE_TEXT: Record<LiveState, string> = {
  connecting: 'connecting…',
  live: 'live',
  retrying: 'reconnecting…',
  unauthorized: 'no live events: a read token is needed',
}

/** Each live event: the page hears it, then refetches what it touched (a burst makes one refetch). */
function onLiveEvent(e: EventRecord): void {
  const page = current?.page
  if (!page) return
  page.onEvent?.(e)
  for (const t of topicsOf(e.kind)) if (page.topics.includes(t)) pendingTopics.add(t)
  if (pendingTopics.size > 0 && eventTimer === undefined)
    eventTimer = window.setTimeout(() => {
      eventTimer = undefined
      const topics = pendingTopics
      pendingTopics = new Set()
      void current?.page.refresh(topics)
    }, 200)
}

function onLiveState(s: LiveState): void {
  live.dataset.state = s
  live.textContent = LIVE_TEXT[s]
}

let stopLive = followEvents(onLiveEvent, onLiveState)

/** The token dialog: a read token for servers without --insecure-read, a write token for actions. */
function openTokens(): void {
  const d = h('dialog', { class: 'tokens' })
  const read = h('input', { name: 'read', type: 'password', autocomplete: 'off', placeholder: 'grail_…' })
  const write = h('input', { name: 'write', type: 'password', autocomplete: 'off', placeholder: 'grail_…' })
  read.value = getToken('read') ?? ''
  write.value = getToken('write') ?? ''
  const form = h(
    'form',
    { method: 'dialog' },
    h('h2', null, 'Tokens'),
    h(
      'p',
      { class: 'muted' },
      'Made with `grail token create --name NAME --scope read|write`. Kept in this tab only (sessionStorage), sent only in the Authorization header.',
    ),
    h('label', null, 'Read token', read),
    h('label', null, 'Write token', write),
    h(
      'div',
      { class: 'buttons' },
      h(
        'button',
        {
          type: 'button',
          onclick: () => {
            setToken('read', '')
            setToken('write', '')
            d.close()
          },
        },
        'Forget both',
      ),
      h('button', { type: 'submit' }, 'Save'),
    ),
  )
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    setToken('read', read.value)
    setToken('write', write.value)
    d.close()
  })
  d.addEventListener('close', () => {
    d.remove()
    // the new token may open what a 401 closed: the page, and the live stream
    environments = undefined
    stopLive()
    stopLive = followEvents(onLiveEvent, onLiveState)
    route()
  })
  d.appendChild(form)
  document.body.appendChild(d)
  d.showModal()
}

byId('tokens').addEventListener('click', openTokens)
window.addEventListener('hashchange', route)
window.setInterval(() => current?.page.tick?.(Date.now()), 1000)
route()
