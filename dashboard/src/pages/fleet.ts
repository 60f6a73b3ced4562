import type { DriftReport } from '../../../src/drift/types.js'
import type { PromoteReport } from '../../../src/engine/promote.js'
import type { RollbackResult } from '../../../src/engine/rollback.js'
import type { StatusReport, StatusRow } from '../../../src/engine/status.js'
import type { EventRecord } from '../../../src/state/events.js'
import type { ActionSpec } from '../actions.js'
import { apiPath, getJson } from '../api.js'
import type { Page, PageFactory } from '../app.js'
import { type Child, h, replace } from '../dom.js'
import { ageOf, formatDuration } from '../format.js'
import type { Topic } from '../live.js'
import type { EnvironmentSummary, ServiceSummary } from '../shapes.js'
import { badge, errorBox, serialized, settle, table } from './common.js'

/** How long an instance that left the status stays listed, struck through, with why it went. */
const GONE_MS = 60_000

interface Gone {
  env: string
  row: StatusRow
  at: number
}

const mergeTopics = (a: Set<Topic> | undefined, b: Set<Topic> | undefined): Set<Topic> | undefined =>
  a === undefined || b === undefined ? undefined : new Set([...a, ...b])

/**
 * The fleet: each environment's services and, per instance, the release and image version it runs,
 * its age against recycle.maxAge, its health and its drift. Polls status so that a health change shows
 * without an event; an instance that leaves is kept a minute as `gone`, with the cause the reconciler
 * gave, so a replacement reads as one.
 */
export const fleetPage: PageFactory = (root, app): Page => {
  let envs: EnvironmentSummary[] = []
  const status = new Map<string, StatusReport | Error>()
  const services = new Map<string, ServiceSummary[]>()
  const drift = new Map<string, DriftReport | Error>()
  const gone = new Map<string, Gone>()
  /** instance id → why the daemon is replacing it (from reconcile.start and instance.* events) */
  const causes = new Map<string, Cause>()
  /** when the status now shown of each environment was asked for */
  const statusAt = new Map<string, number>()
  let loaded = false

  const fetchStatus = async (): Promise<void> => {
    const asked = Date.now()
    const got = await settle(
      envs.map((e) => e.name),
      (env) => getJson<StatusReport>(apiPath('environments', env, 'status')),
    )
    const now = Date.now()
    for (const [env, report] of got) {
      const before = status.get(env)
      if (!(report instanceof Error) && before && !(before instanceof Error)) {
        const ids = new Set(report.instances.map((i) => i.id))
        for (const row of before.instances) if (!ids.has(row.id)) gone.set(row.id, { env, row, at: now })
      }
      status.set(env, report)
      if (!(report instanceof Error)) statusAt.set(env, asked)
    }
    for (const [id, g] of gone) {
      if (now - g.at <= GONE_MS) continue
      gone.delete(id)
      causes.delete(id)
    }
  }

  const fetchServices = async (): Promise<void> => {
    const got = await settle(
      envs.map((e) => e.name),
      (env) => getJson<ServiceSummary[]>(apiPath('environments', env, 'services')),
    )
    for (const [env, list] of got) if (!(list instanceof Error)) services.set(env, list)
  }

  const fetchDrift = async (): Promise<void> => {
    const got = await settle(
      envs.map((e) => e.name),
      (env) => getJson<DriftReport>(apiPath('environments', env, 'drift')),
    )
    for (const [env, report] of got) drift.set(env, report)
  }

  const refresh = serialized<Set<Topic>>(async (topics) => {
    try {
      if (!loaded) {
        envs = await app.environments()
        await Promise.all([fetchStatus(), fetchServices(), fetchDrift()])
        loaded = true
      } else {
        const jobs: Array<Promise<void>> = []
        if (!topics || topics.has('status')) jobs.push(fetchStatus(), fetchServices())
        if (!topics || topics.has('drift')) jobs.push(fetchDrift())
        await Promise.all(jobs)
      }
      app.recovered()
    } catch (err) {
      app.failed(err)
    }
    render()
  }, mergeTopics)

  const render = (): void => {
    const now = Date.now()
    if (envs.length === 0) {
      replace(
        root,
        h('p', { class: 'muted' }, loaded ? 'grail serve reconciles no environment.' : 'Loading…'),
      )
      return
    }
    replace(
      root,
      envs.map((env) => environmentSection(env, now)),
    )
  }

  const environmentSection = (env: EnvironmentSummary, now: number): HTMLElement => {
    const report = status.get(env.name)
    const head = h(
      'header',
      { class: 'env-head' },
      h('h2', null, env.name),
      env.provider ? h('span', { class: 'muted' }, `provider ${env.provider}`) : null,
      h('span', { class: 'spacer' }),
      h(
        'button',
        {
          class: 'action',
          'data-action': 'recycle',
          onclick: () => app.act(recycleAction(env.name, undefined)),
        },
        'Recycle now',
      ),
    )
    if (report === undefined)
      return h('section', { class: 'env' }, head, h('p', { class: 'muted' }, 'Loading…'))
    if (report instanceof Error) return h('section', { class: 'env' }, head, errorBox(report))
    const svcInfo = services.get(env.name) ?? []
    const names = [
      ...new Set([...svcInfo.map((s) => s.name), ...env.services, ...report.instances.map((i) => i.service)]),
    ]
    const d = drift.get(env.name)
    return h(
      'section',
      { class: 'env', 'data-environment': env.name },
      head,
      report.proxies.length > 0
        ? h(
            'p',
            { class: 'muted' },
            report.proxies.map((p) => `${p.service} proxy ${p.listen}: ${p.state}`).join(' · '),
          )
        : null,
      names.map((name) =>
        serviceBlock(
          env.name,
          name,
          report,
          svcInfo.find((s) => s.name === name),
          d,
          now,
        ),
      ),
    )
  }

  const serviceBlock = (
    env: string,
    name: string,
    report: StatusReport,
    info: ServiceSummary | undefined,
    d: DriftReport | Error | undefined,
    now: number,
  ): HTMLElement => {
    const releases = report.releases.filter((r) => r.service === name)
    const active = releases.find((r) => r.status === 'active')
    const rows = report.instances.filter((i) => i.service === name)
    const ghosts = [...gone.values()].filter(
      (g) => g.env === env && g.row.service === name && !report.instances.some((i) => i.id === g.row.id),
    )
    const loop = report.crashLoops.find((c) => c.service === name)
    const facts: Child[] = [
      active
        ? `release #${active.number} (${active.imageName} v${active.imageVersion})`
        : 'no active release',
      info?.replicas != null ? `${info.replicas} replica${info.replicas === 1 ? '' : 's'}` : null,
      info?.maxAgeMs != null ? `maxAge ${formatDuration(info.maxAgeMs)}` : null,
      info?.driftPolicy ? `drift: ${info.driftPolicy}` : null,
    ]
    const others = envs.filter((e) => e.name !== env)
    return h(
      'div',
      { class: 'service', 'data-service': name, 'data-active-release': active?.number ?? '' },
      h(
        'header',
        null,
        h('h3', null, name),
        h('span', { class: 'muted' }, facts.filter((f) => f !== null).join(' · ')),
        h('span', { class: 'spacer' }),
        h(
          'button',
          {
            class: 'action',
            'data-action': 'rollback',
            disabled: releases.length < 2,
            title: releases.length < 2 ? 'no earlier release' : 're-deploy an earlier release',
            onclick: () => app.act(rollbackAction(env, name, releases, active?.number)),
          },
          'Roll back',
        ),
        others.length > 0
          ? h(
              'button',
              {
                class: 'action',
                'data-action': 'promote',
                onclick: () =>
                  app.act(
                    promoteAction(
                      env,
                      name,
                      others.map((e) => e.name),
                    ),
                  ),
              },
              'Promote…',
            )
          : null,
        h(
          'button',
          { class: 'action', 'data-action': 'recycle', onclick: () => app.act(recycleAction(env, name)) },
          'Recycle',
        ),
      ),
      loop ? h('p', { class: 'error' }, `crash loop: ${loop.summary}`) : null,
      rows.length + ghosts.length === 0
        ? h('p', { class: 'muted' }, 'no instances')
        : table(
            ['instance', 'release', 'image', 'age', 'health', 'drift', 'pid', 'port'],
            [...rows.map((r) => instanceRow(env, r, info, d, now)), ...ghosts.map((g) => goneRow(g, now))],
            'instances',
          ),
    )
  }

  const instanceRow = (
    env: string,
    r: StatusRow,
    info: ServiceSummary | undefined,
    d: DriftReport | Error | undefined,
    now: number,
  ): HTMLTableRowElement => {
    const age = ageOf(r.createdAt, now)
    const max = info?.maxAgeMs ?? null
    const cause = causes.get(r.id)
    // an event newer than the status says the instance is down: show that until the next status
    const health =
      cause && DOWN.has(cause.cause) && cause.at > (statusAt.get(env) ?? 0) && r.health === 'healthy'
        ? cause.cause
        : r.health
    const probe = r.probe ? `last probe: ${r.probe.detail} (${r.probe.failures} failure(s) in a row)` : ''
    return h(
      'tr',
      {
        'data-instance': r.id,
        'data-health': health,
        'data-release': r.release,
        'data-replacing': cause?.cause ?? null,
      },
      h('td', null, h('code', null, r.id)),
      h('td', null, `#${r.release}`),
      h('td', { title: r.digest ?? '' }, r.image),
      h(
        'td',
        { class: 'age' },
        max !== null
          ? [
              h('meter', {
                min: 0,
                max,
                value: Math.min(age, max),
                low: max * 0.75,
                high: max * 0.9,
                optimum: 0,
              }),
              ` ${formatDuration(age)} / ${formatDuration(max)}`,
            ]
          : formatDuration(age),
      ),
      h(
        'td',
        { title: probe },
        badge(health, healthClass(health)),
        cause ? h('span', { class: 'replacing', title: cause.why }, ` replacing: ${cause.cause}`) : null,
      ),
      h('td', null, driftCell(r.id, d)),
      h('td', null, r.pid === null ? '-' : String(r.pid)),
      h('td', null, r.port === null ? '-' : String(r.port)),
    )
  }

  const goneRow = (g: Gone, now: number): HTMLTableRowElement => {
    const cause = causes.get(g.row.id)
    return h(
      'tr',
      { class: 'gone', 'data-instance': g.row.id, 'data-health': 'gone', 'data-release': g.row.release },
      h('td', null, h('code', null, g.row.id)),
      h('td', null, `#${g.row.release}`),
      h('td', null, g.row.image),
      h('td', null, `gone ${formatDuration(now - g.at)} ago`),
      h('td', { title: cause?.why ?? '' }, badge('gone', 'gone'), cause ? ` (${cause.cause})` : ''),
      h('td', null, '-'),
      h('td', null, '-'),
      h('td', null, '-'),
    )
  }

  return {
    topics: ['status', 'drift'],
    pollMs: 3000,
    pollTopics: ['status'],
    refresh,
    onEvent(e: EventRecord) {
      const marks = replacementsIn(e)
      if (marks.length === 0) return
      for (const m of marks) causes.set(m.instance, { cause: m.cause, why: m.why, at: Date.now() })
      // the page shows the cause at once, before the refetch the event causes
      render()
    },
  }
}

/** Why an event says an instance is being replaced: the plan's cause (`crashed`), its reason, when heard. */
interface Cause {
  cause: string
  why: string
  at: number
}

/** Replacement causes that mean the instance is down, not merely due (drift, recycle). */
const DOWN = new Set(['crashed', 'missing', 'unhealthy'])

/**
 * The instances an event says are being replaced or went bad, with why: the actions of the daemon's
 * `reconcile.start` (written before it acts), `instance.replaced`, `instance.unhealthy`.
 */
function replacementsIn(e: EventRecord): Array<{ instance: string; cause: string; why: string }> {
  if (e.kind === 'reconcile.start' && Array.isArray(e.data.actions)) {
    return (e.data.actions as Array<Record<string, unknown>>).flatMap((a) =>
      typeof a.instance === 'string'
        ? [
            {
              instance: a.instance,
              cause: typeof a.cause === 'string' ? a.cause : String(a.kind),
              why: typeof a.reason === 'string' ? a.reason : e.kind,
            },
          ]
        : [],
    )
  }
  if (e.kind !== 'instance.replaced' && e.kind !== 'instance.unhealthy') return []
  const why = typeof e.data.reason === 'string' ? e.data.reason : e.kind
  const cause =
    typeof e.data.cause === 'string' ? e.data.cause : e.kind === 'instance.unhealthy' ? 'unhealthy' : why
  return [{ instance: e.subject, cause, why }]
}

function healthClass(health: string): string {
  if (health === 'healthy') return 'ok'
  if (health === 'starting' || health === 'creating' || health === 'failing' || health === 'draining')
    return 'warn'
  return 'bad'
}

function driftCell(id: string, d: DriftReport | Error | undefined): Child {
  if (d === undefined) return '…'
  if (d instanceof Error) return h('span', { class: 'muted', title: d.message }, '?')
  const x = d.instances.find((i) => i.instance === id)
  if (!x) return '-'
  if (x.unexplained === 0 && x.excused === 0 && x.expiredHotfix === undefined) return badge('clean', 'ok')
  const parts: Child[] = []
  if (x.unexplained > 0) parts.push(badge(`${x.unexplained} unexplained`, 'bad'))
  if (x.excused > 0) parts.push(badge(`${x.excused} excused`, 'warn'))
  if (x.expiredHotfix !== undefined) parts.push(badge('hotfix expired', 'bad'))
  return h('a', { href: '#/drift' }, parts)
}

function rollbackAction(
  env: string,
  service: string,
  releases: StatusReport['releases'],
  active: number | undefined,
): ActionSpec {
  const earlier = releases.filter((r) => r.number !== active).sort((a, b) => b.number - a.number)
  return {
    title: `Roll back ${service} in ${env}`,
    summary: [
      h(
        'p',
        null,
        `Re-deploys an earlier release of ${service} through the normal rollout (health gates, one at a time). ` +
          'It pins nothing: an apply of a spec that still builds the newer version deploys it again.',
      ),
    ],
    path: apiPath('environments', env, 'services', service, 'rollback'),
    fields: [
      {
        kind: 'select',
        name: 'release',
        label: 'Release',
        options: [
          { value: '', label: 'the one before the active one' },
          ...earlier.map((r) => ({
            value: String(r.number),
            label: `#${r.number}: ${r.imageName} v${r.imageVersion} (${r.status})`,
          })),
        ],
      },
    ],
    body: (v) => (v.release ? { release: Number(v.release) } : {}),
    describe: (res) => {
      const r = res as RollbackResult
      return [
        r.ok
          ? `Release #${r.release.number} of ${service} is active again.`
          : `Release #${r.release.number} failed its gate.`,
        r.reason ? ` ${r.reason}` : '',
        r.ok && r.nextApply
          ? h('p', { class: 'warn' }, `The spec still deploys ${r.nextApply}: the next apply undoes this.`)
          : null,
      ]
    },
  }
}

function promoteAction(env: string, service: string, from: string[]): ActionSpec {
  return {
    title: `Promote ${service} into ${env}`,
    summary: [
      h(
        'p',
        null,
        `Deploys in ${env} the exact release of ${service} active in the environment you pick (same image and config; nothing is built).`,
      ),
    ],
    path: apiPath('environments', env, 'services', service, 'promote'),
    fields: [
      { kind: 'select', name: 'from', label: 'From', options: from.map((e) => ({ value: e, label: e })) },
    ],
    body: (v) => ({ from: v.from }),
    describe: (res) => {
      const r = res as PromoteReport
      return [
        !r.deployed
          ? `${env} already runs ${r.from.environment}#${r.from.release}.`
          : r.rollout?.ok
            ? `Release #${r.to.release} (${r.from.environment}#${r.from.release}) is active in ${env}.`
            : `Release #${r.to.release} failed its gate: ${r.rollout?.reason ?? ''}`,
      ]
    },
  }
}

function recycleAction(env: string, service: string | undefined): ActionSpec {
  return {
    title: service ? `Recycle ${service} in ${env}` : `Recycle ${env}`,
    summary: [
      h(
        'p',
        null,
        `Replaces the instances${service ? ` of ${service}` : ''} older than their recycle.maxAge, oldest first, one disruption budget at a time.`,
      ),
    ],
    path: apiPath('environments', env, 'recycle'),
    body: () => (service ? { service } : {}),
    describe: (res) => {
      const n = (res as { actions: unknown[] }).actions.length
      return [n === 0 ? 'No instance was due.' : `${n} instance(s) replaced.`]
    },
  }
}
