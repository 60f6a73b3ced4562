import { apiPath, getJson } from '../api.js'
import type { Page, PageFactory } from '../app.js'
import { h, replace } from '../dom.js'
import { formatDuration, formatTime } from '../format.js'
import { type HotfixSummary, stillLive } from '../shapes.js'
import { badge, errorBox, serialized, table } from './common.js'

/** The text of a TTL countdown at `now`. */
export function ttlText(expiresAt: string, now: number): string {
  const left = Date.parse(expiresAt) - now
  return left > 0 ? `${formatDuration(left)} left` : 'expired: due for replacement'
}

/** Hotfixes: the live ones with their TTL counting down, then the past ones. */
export const hotfixesPage: PageFactory = (root, app): Page => {
  let hotfixes: HotfixSummary[] | Error | undefined

  const refresh = serialized<unknown>(
    async () => {
      try {
        hotfixes = await getJson<HotfixSummary[]>(apiPath('hotfixes'))
        app.recovered()
      } catch (err) {
        hotfixes = err instanceof Error ? err : new Error(String(err))
        app.failed(err)
      }
      render()
    },
    () => undefined,
  )

  const render = (): void => {
    if (hotfixes === undefined) {
      replace(root, h('p', { class: 'muted' }, 'Loading…'))
      return
    }
    if (hotfixes instanceof Error) {
      replace(root, errorBox(hotfixes))
      return
    }
    const now = Date.now()
    const live = hotfixes.filter((x) => stillLive(x, now))
    const past = hotfixes.filter((x) => !stillLive(x, now))
    const row = (x: HotfixSummary, countdown: boolean): HTMLTableRowElement =>
      h(
        'tr',
        { 'data-hotfix': x.id },
        h('td', null, `#${x.id}`),
        h('td', null, h('code', null, x.instance)),
        h('td', null, `${x.environment} / ${x.service}`),
        h('td', null, x.reason || h('span', { class: 'muted' }, '(no reason given)')),
        h('td', null, h('code', null, x.command.join(' '))),
        h(
          'td',
          null,
          x.files.length === 0
            ? '-'
            : h(
                'ul',
                { class: 'files' },
                x.files.map((f) => h('li', null, h('code', null, `${f.kind} ${f.path}`))),
              ),
        ),
        h('td', null, x.actor),
        h(
          'td',
          { title: formatTime(x.expiresAt) },
          countdown
            ? h('span', { class: 'ttl', 'data-expires': x.expiresAt }, ttlText(x.expiresAt, now))
            : x.status === 'recorded'
              ? `ended ${formatTime(x.expiresAt)}`
              : `${x.status}${x.exitCode !== null ? `, exit ${x.exitCode}` : ''}`,
        ),
      )
    const head = ['#', 'instance', 'where', 'reason', 'command', 'files', 'by', 'TTL']
    replace(
      root,
      h(
        'section',
        null,
        h('h2', null, 'Live ', badge(String(live.length), live.length > 0 ? 'warn' : 'ok')),
        live.length === 0
          ? h('p', { class: 'muted' }, 'No live hotfix: every instance runs exactly its release.')
          : table(
              head,
              live.map((x) => row(x, true)),
              'hotfixes hotfixes-live',
            ),
      ),
      h(
        'section',
        null,
        h('h2', null, 'Past'),
        past.length === 0
          ? h('p', { class: 'muted' }, 'None.')
          : table(
              head,
              past.map((x) => row(x, false)),
              'hotfixes',
            ),
      ),
    )
  }

  return {
    topics: ['hotfixes'],
    refresh,
    tick(now) {
      // the row moves to the past list at the refetch that the instance's replacement (an event) causes
      for (const el of Array.from(root.querySelectorAll<HTMLElement>('.ttl[data-expires]'))) {
        const at = el.dataset.expires ?? ''
        el.textContent = ttlText(at, now)
        if (Date.parse(at) <= now) el.classList.add('expired')
      }
    },
  }
}
