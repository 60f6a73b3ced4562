import type { DriftReport, FileFinding, InstanceDrift } from '../../../src/drift/types.js'
import { apiPath, getJson } from '../api.js'
import type { Page, PageFactory } from '../app.js'
import { type Child, h, replace } from '../dom.js'
import { formatTime } from '../format.js'
import { badge, errorBox, serialized, settle } from './common.js'

const CLASS_BADGE: Record<FileFinding['class'], string> = {
  unexplained: 'bad',
  excused: 'warn',
  expected: 'muted',
}

/**
 * Drift: per environment, every instance that differs from its release (files with their diff, runtime
 * findings, an expired hotfix) and what the spec changed that is not applied.
 */
export const driftPage: PageFactory = (root, app): Page => {
  let reports: Map<string, DriftReport | Error> | undefined

  const refresh = serialized<unknown>(
    async () => {
      try {
        const envs = await app.environments()
        reports = await settle(
          envs.map((e) => e.name),
          (env) => getJson<DriftReport>(apiPath('environments', env, 'drift')),
        )
        app.recovered()
      } catch (err) {
        app.failed(err)
      }
      render()
    },
    () => undefined,
  )

  const render = (): void => {
    if (!reports) {
      replace(root, h('p', { class: 'muted' }, 'Scanning…'))
      return
    }
    replace(
      root,
      [...reports].map(([env, r]) =>
        h(
          'section',
          { class: 'env', 'data-environment': env },
          h('h2', null, env),
          r instanceof Error ? errorBox(r) : environmentDrift(r),
        ),
      ),
    )
  }

  return { topics: ['drift'], refresh }
}

function environmentDrift(r: DriftReport): Child[] {
  const shown = r.instances.filter(
    (d) => d.files.length > 0 || d.runtime.length > 0 || d.expiredHotfix !== undefined,
  )
  return [
    h(
      'p',
      null,
      `${r.instances.length} instance(s) scanned at ${formatTime(r.at)}: `,
      r.drifted.length > 0
        ? badge(`${r.drifted.length} drifted`, 'bad')
        : badge('no unexplained drift', 'ok'),
    ),
    r.desired.length > 0
      ? h(
          'ul',
          { class: 'desired' },
          r.desired.map((s) => h('li', null, badge('not applied', 'warn'), ` ${s.service}: ${s.reason}`)),
        )
      : null,
    shown.map(instanceDrift),
  ]
}

function instanceDrift(d: InstanceDrift): HTMLElement {
  return h(
    'div',
    { class: 'drift', 'data-instance': d.instance },
    h(
      'h3',
      null,
      h('code', null, d.instance),
      h('span', { class: 'muted' }, ` ${d.service} #${d.release} `),
      d.unexplained ? badge(`${d.unexplained} unexplained`, 'bad') : null,
      d.excused ? badge(`${d.excused} excused`, 'warn') : null,
      d.expected ? badge(`${d.expected} expected`, 'muted') : null,
    ),
    d.expiredHotfix !== undefined
      ? h('p', { class: 'error' }, `hotfix #${d.expiredHotfix} expired: due for replacement`)
      : null,
    d.runtime.length > 0
      ? h(
          'ul',
          null,
          d.runtime.map((x) => h('li', null, badge(x.kind, CLASS_BADGE[x.class]), ` ${x.detail}`)),
        )
      : null,
    d.files.map((f) =>
      h(
        'div',
        { class: 'file' },
        h(
          'div',
          null,
          badge(f.kind, CLASS_BADGE[f.class]),
          ' ',
          h('code', null, f.path),
          f.kind === 'C' && f.what.length > 0 ? h('span', { class: 'muted' }, ` ${f.what.join(', ')}`) : null,
          f.class === 'excused' ? h('span', { class: 'muted' }, ` excused by hotfix #${f.hotfix}`) : null,
          f.class === 'expected' ? h('span', { class: 'muted' }, ' expected (ignored)') : null,
        ),
        f.diff ? diffView(f.diff) : null,
      ),
    ),
    d.touched > 0 ? h('p', { class: 'muted' }, `${d.touched} path(s) touched without any change`) : null,
  )
}

/** A unified diff, one line per row, coloured by its first character. */
export function diffView(diff: string): HTMLElement {
  const lines = diff.split('\n')
  if (lines.at(-1) === '') lines.pop()
  return h(
    'pre',
    { class: 'diff' },
    lines.map((line) => {
      const cls =
        line.startsWith('+++') || line.startsWith('---')
          ? 'head'
          : line.startsWith('@@')
            ? 'hunk'
            : line.startsWith('+')
              ? 'add'
              : line.startsWith('-')
                ? 'del'
                : 'ctx'
      return h('span', { class: cls }, `${line}\n`)
    }),
  )
}
