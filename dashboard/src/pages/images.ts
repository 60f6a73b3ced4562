import type { ListedImage } from '../../../src/engine/images.js'
import type { StatusReport } from '../../../src/engine/status.js'
import type { RevokeResult } from '../../../src/lifecycle/revoke.js'
import type { ActionSpec } from '../actions.js'
import { apiPath, getJson } from '../api.js'
import type { Page, PageFactory } from '../app.js'
import { type Child, h, replace } from '../dom.js'
import { ageOf, formatBytes, formatDuration, formatTime, shortDigest } from '../format.js'
import { type OutdatedReport, type OutdatedRow, outdatedRows } from '../shapes.js'
import { ancestry, type TreeNode } from '../tree.js'
import { badge, errorBox, serialized, settle, table } from './common.js'

/** Where an image version runs: `prod: web #4, 2 instances`. */
type RunningIn = Map<string, string[]>

/**
 * Images: the ancestry tree, every version with its digest, status (revoked, out of date) and where
 * it runs, and the packages with a newer version in the archive (/api/v1/outdated).
 */
export const imagesPage: PageFactory = (root, app): Page => {
  let images: ListedImage[] | Error | undefined
  let outdated: OutdatedReport | Error | undefined
  let running: RunningIn = new Map()

  const refresh = serialized<unknown>(
    async () => {
      try {
        const envs = await app.environments()
        const [imgs, out, statuses] = await Promise.all([
          getJson<ListedImage[]>(apiPath('images')).catch((e: Error) => e),
          getJson<OutdatedReport>(apiPath('outdated')).catch((e: Error) => e),
          settle(
            envs.map((e) => e.name),
            (env) => getJson<StatusReport>(apiPath('environments', env, 'status')),
          ),
        ])
        images = imgs
        outdated = out
        running = runningIn(statuses)
        if (imgs instanceof Error) app.failed(imgs)
        else app.recovered()
      } catch (err) {
        app.failed(err)
      }
      render()
    },
    () => undefined,
  )

  const render = (): void => {
    if (images === undefined) {
      replace(root, h('p', { class: 'muted' }, 'Loading…'))
      return
    }
    if (images instanceof Error) {
      replace(root, errorBox(images))
      return
    }
    const now = Date.now()
    const list = images
    const names = [...new Set(list.map((i) => i.name))]
    replace(
      root,
      h(
        'section',
        null,
        h('h2', null, 'Ancestry'),
        list.length === 0
          ? h('p', { class: 'muted' }, 'No images yet: run `grail build`.')
          : h(
              'ul',
              { class: 'tree' },
              ancestry(list).map((n) => treeNode(n)),
            ),
      ),
      names.map((name) =>
        h(
          'section',
          { 'data-image': name },
          h('h2', null, name),
          table(
            ['version', 'digest', 'size', 'packages', 'built', 'commit', 'status', 'runs in', ''],
            list.filter((i) => i.name === name).map((i) => versionRow(i, now)),
            'versions',
          ),
        ),
      ),
      h(
        'section',
        null,
        h('h2', null, 'Pending package updates'),
        outdated === undefined
          ? h('p', { class: 'muted' }, 'Loading…')
          : outdated instanceof Error
            ? errorBox(outdated)
            : updates(outdated),
      ),
    )
  }

  const marks = (i: ListedImage): Child[] => [
    i.status === 'active' ? badge('active', 'ok') : badge(i.status, i.status === 'revoked' ? 'bad' : 'warn'),
    i.statusReason ? h('span', { class: 'muted' }, ` ${i.statusReason}`) : null,
    i.outOfDate
      ? [' ', badge('out of date', 'warn'), h('span', { class: 'muted' }, ` ${i.outOfDate}`)]
      : null,
  ]

  const revokeButton = (i: ListedImage): Child =>
    i.status === 'revoked'
      ? null
      : h(
          'button',
          { class: 'action', 'data-action': 'revoke', onclick: () => app.act(revokeAction(i, running)) },
          'Revoke…',
        )

  const treeNode = (n: TreeNode): HTMLElement => {
    const i = n.image
    const where = running.get(i.digest) ?? []
    return h(
      'li',
      { 'data-digest': i.digest },
      h(
        'span',
        { class: 'node' },
        h('strong', null, `${i.name} v${i.version}`),
        ' ',
        h('code', { title: i.digest }, shortDigest(i.digest)),
        ' ',
        marks(i),
        where.length > 0 ? h('span', { class: 'runs' }, ` runs in ${where.join('; ')}`) : null,
      ),
      n.children.length > 0
        ? h(
            'ul',
            null,
            n.children.map((c) => treeNode(c)),
          )
        : null,
    )
  }

  const versionRow = (i: ListedImage, now: number): HTMLTableRowElement =>
    h(
      'tr',
      { 'data-version': i.version, 'data-status': i.status },
      h('td', null, `v${i.version}`),
      h('td', null, h('code', { title: i.digest }, shortDigest(i.digest))),
      h('td', null, formatBytes(i.size)),
      h(
        'td',
        {
          title: i.packages
            .slice(0, 40)
            .map((p) => `${p.name} ${p.version}`)
            .join('\n'),
        },
        String(i.packages.length),
      ),
      h('td', null, `${formatDuration(ageOf(i.createdAt, now))} ago`),
      h('td', null, i.gitCommit ? h('code', null, i.gitCommit.slice(0, 8)) : '-'),
      h('td', null, marks(i)),
      h('td', null, (running.get(i.digest) ?? []).join('; ') || '-'),
      h('td', null, revokeButton(i)),
    )

  return { topics: ['images', 'outdated'], refresh }
}

/** The package updates of the outdated report, or why there are none. */
function updates(report: OutdatedReport): HTMLElement {
  const rows: OutdatedRow[] = outdatedRows(report)
  if (rows.length > 0)
    return table(
      ['image', 'package', 'locked', 'available', 'from', ''],
      rows.map((o) => [
        o.image,
        o.package,
        h('code', null, o.locked),
        h('code', null, o.available),
        o.suite,
        o.security ? badge('security', 'bad') : '',
      ]),
      'outdated',
    )
  const archives = [...new Set(report.images.flatMap((i) => (i.archive ? [i.archive] : [])))]
  return h(
    'p',
    { class: 'muted' },
    archives.length === 0
      ? 'No image here is built on a Debian base: there are no packages to compare with the archive.'
      : `Every package is at the newest version of ${archives.join(', ')} (checked ${formatTime(report.checkedAt)}).`,
  )
}

/** digest → where an active release runs it, with how many instances run that release. */
function runningIn(statuses: Map<string, StatusReport | Error>): RunningIn {
  const out: RunningIn = new Map()
  for (const [env, s] of statuses) {
    if (s instanceof Error) continue
    for (const r of s.releases) {
      if (r.status !== 'active') continue
      const n = s.instances.filter((i) => i.service === r.service && i.release === r.number).length
      const list = out.get(r.imageDigest) ?? []
      list.push(`${env}: ${r.service} #${r.number}, ${n} instance${n === 1 ? '' : 's'}`)
      out.set(r.imageDigest, list)
    }
  }
  return out
}

function revokeAction(i: ListedImage, running: RunningIn): ActionSpec {
  const where = running.get(i.digest) ?? []
  return {
    title: `Revoke ${i.name} v${i.version}`,
    summary: [
      h(
        'p',
        null,
        'Pulls this version out of service: the next plan of every environment replaces what runs it, and builds refuse it as a base.',
      ),
      where.length > 0 ? h('p', { class: 'warn' }, `It runs in ${where.join('; ')}.`) : null,
    ],
    path: apiPath('images', i.name, 'versions', i.version, 'revoke'),
    fields: [{ kind: 'checkbox', name: 'cascade', label: 'also revoke every image built on it' }],
    body: (v) => ({ cascade: v.cascade === 'on' }),
    describe: (res) => {
      const r = res as RevokeResult
      return [
        `Revoked ${r.revoked.map((x) => `${x.name} v${x.version}`).join(', ')}.`,
        r.children.length > 0
          ? ` Built on it and still active: ${r.children.map((c) => `${c.name} v${c.version}`).join(', ')}.`
          : '',
      ]
    },
  }
}
