import { driftReport } from '../../engine/drift-report.js'
import { planReport } from '../../engine/deploy.js'
import { environmentList, hotfixSummaries, serviceSummaries } from '../../engine/fleet.js'
import { imageCatalog } from '../../engine/images.js'
import { statusReport } from '../../engine/status.js'
import { GrailError } from '../../errors.js'
import { requireEnvironment } from '../../spec/environments.js'
import { eventPage, listReleases } from '../../state/index.js'
import type { ServerContext } from '../context.js'
import { type EventStreams, lastEventIdOf } from './event-stream.js'
import { type DriftCache, fleetMetrics } from './fleet-metrics.js'
import { renderMetrics } from './metrics.js'
import { SECURITY_HEADERS } from './respond.js'
import type { Route } from './router.js'
import { schemaRef as ref } from './schemas.js'

/** What the read routes share: the context, the open event streams, the metrics' drift cache. */
export interface ReadDeps {
  ctx: ServerContext
  streams: EventStreams
  heartbeatMs: number
  driftCache: DriftCache
  /** the patch pipeline's report (`grail outdated --json`), when the daemon has one */
  outdated?: () => Promise<unknown>
}

const list = (name: string) => ({ type: 'array', items: ref(name) })

/** The environment a path names, checked against the spec (UNKNOWN_ENVIRONMENT → 404). */
export function environmentOf(ctx: ServerContext, env: string): string {
  requireEnvironment(ctx.project(), env)
  return env
}

/** A whole number from the query, or the default; anything else is a 400 naming the parameter. */
function queryInt(q: URLSearchParams, name: string, opts: { min: number; max: number; fallback?: number }) {
  const raw = q.get(name)
  if (raw === null) return opts.fallback
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN
  if (!(n >= opts.min && n <= opts.max)) {
    throw new GrailError(
      'API_BAD_REQUEST',
      `query parameter ${name}=${JSON.stringify(raw)} is not a whole number from ${opts.min} to ${opts.max}`,
      {
        hint: `for example ?${name}=${opts.fallback ?? opts.min}`,
      },
    )
  }
  return n
}

function queryFlag(q: URLSearchParams, name: string): boolean {
  const raw = q.get(name)
  if (raw === null || raw === 'false' || raw === '0') return false
  if (raw === '' || raw === 'true' || raw === '1') return true
  throw new GrailError(
    'API_BAD_REQUEST',
    `query parameter ${name}=${JSON.stringify(raw)} is not true or false`,
    {
      hint: `?${name}=true`,
    },
  )
}

/** The GET routes: fleet, images, events, the reconciler's figures and the metrics. */
export function readRoutes(d: ReadDeps): Route[] {
  const { ctx } = d
  const status = (env: string) =>
    ctx.withEnvironment(environmentOf(ctx, env), { lock: false }, (a) => statusReport(a))
  return [
    {
      method: 'GET',
      path: '/api/v1/environments',
      access: 'read',
      doc: { summary: "The project's environments", tags: ['fleet'], response: list('Environment') },
      handle: async () => ({ json: environmentList(ctx.project()) }),
    },
    {
      method: 'GET',
      path: '/api/v1/environments/{env}/status',
      access: 'read',
      doc: {
        summary:
          'Instances (health probed now), crash loops, releases and proxies: `grail status ENV --json`',
        tags: ['fleet'],
        response: ref('Status'),
      },
      handle: async (r) => ({ json: await status(r.params.env as string) }),
    },
    {
      method: 'GET',
      path: '/api/v1/environments/{env}/instances',
      access: 'read',
      doc: {
        summary: 'The instances of `grail status ENV --json`',
        tags: ['fleet'],
        response: list('Instance'),
      },
      handle: async (r) => ({ json: (await status(r.params.env as string)).instances }),
    },
    {
      method: 'GET',
      path: '/api/v1/environments/{env}/services',
      access: 'read',
      doc: {
        summary: 'Each service: image, replicas, active release, recycle.maxAge (ms), drift policy',
        tags: ['fleet'],
        response: list('Service'),
      },
      handle: async (r) => ({
        json: serviceSummaries(ctx.db, ctx.project(), environmentOf(ctx, r.params.env as string)),
      }),
    },
    {
      method: 'GET',
      path: '/api/v1/environments/{env}/releases',
      access: 'read',
      doc: {
        summary: 'Every release of the environment, newest first per service',
        tags: ['fleet'],
        response: list('Release'),
      },
      handle: async (r) => ({ json: listReleases(ctx.db, environmentOf(ctx, r.params.env as string)) }),
    },
    {
      method: 'GET',
      path: '/api/v1/environments/{env}/plan',
      access: 'read',
      doc: {
        summary: 'What apply would do, and why: `grail plan ENV --json`',
        tags: ['fleet'],
        response: ref('Plan'),
      },
      handle: async (r) => ({
        json: await ctx.withEnvironment(
          environmentOf(ctx, r.params.env as string),
          { lock: false },
          async (a) => (await planReport(a, Date.now())).plan,
        ),
      }),
    },
    {
      method: 'GET',
      path: '/api/v1/environments/{env}/drift',
      access: 'read',
      doc: {
        summary: 'File and runtime drift of every instance, with diffs: `grail drift ENV --json`',
        tags: ['fleet'],
        query: {
          instance: { schema: { type: 'string' }, description: 'only this instance' },
          all: { schema: { type: 'boolean' }, description: 'also list expected changes (drift.ignore)' },
        },
        response: ref('Drift'),
      },
      handle: async (r) => {
        const instance = r.query.get('instance') ?? undefined
        const all = queryFlag(r.query, 'all')
        return {
          json: await ctx.withEnvironment(
            environmentOf(ctx, r.params.env as string),
            { lock: false },
            async (a) => {
              if (instance !== undefined) a.provider.checkId(instance)
              return (await driftReport(a, { ...(instance !== undefined ? { instance } : {}), all })).report
            },
          ),
        }
      },
    },
    {
      method: 'GET',
      path: '/api/v1/hotfixes',
      access: 'read',
      doc: { summary: 'Live and past hotfixes, newest first', tags: ['fleet'], response: list('Hotfix') },
      handle: async () => ({ json: hotfixSummaries(ctx.db) }),
    },
    {
      method: 'GET',
      path: '/api/v1/images',
      access: 'read',
      doc: {
        summary: 'Every image version: digest, parent, status, where it runs: `grail images --json`',
        tags: ['images'],
        response: list('Image'),
      },
      handle: async () => ({ json: imageCatalog(ctx.db).images }),
    },
    {
      method: 'GET',
      path: '/api/v1/images/{name}',
      access: 'read',
      doc: { summary: 'The versions of one image, newest first', tags: ['images'], response: list('Image') },
      handle: async (r) => {
        const name = r.params.name as string
        const versions = imageCatalog(ctx.db).images.filter((i) => i.name === name)
        if (versions.length === 0)
          throw new GrailError('UNKNOWN_IMAGE', `no image named ${JSON.stringify(name)} in the catalog`, {
            hint: 'GET /api/v1/images lists them',
          })
        return { json: versions }
      },
    },
    ...(d.outdated
      ? [
          {
            method: 'GET',
            path: '/api/v1/outdated',
            access: 'read',
            doc: {
              summary: 'Packages of built images with newer versions in the archive: `grail outdated --json`',
              tags: ['images'],
              response: ref('Outdated'),
            },
            handle: async () => ({ json: await (d.outdated as () => Promise<unknown>)() }),
          } satisfies Route,
        ]
      : []),
    {
      method: 'GET',
      path: '/api/v1/events',
      access: 'read',
      doc: {
        summary: 'The event log, newest first, a page at a time',
        tags: ['events'],
        query: {
          before: {
            schema: { type: 'integer', minimum: 1 },
            description: 'only events with a lower id (the `next` of the previous page)',
          },
          limit: {
            schema: { type: 'integer', minimum: 1, maximum: 500 },
            description: 'page size (default 100)',
          },
        },
        response: ref('EventPage'),
      },
      handle: async (r) => {
        const before = queryInt(r.query, 'before', { min: 1, max: Number.MAX_SAFE_INTEGER })
        const limit = queryInt(r.query, 'limit', { min: 1, max: 500, fallback: 100 }) as number
        return { json: eventPage(ctx.db, { ...(before !== undefined ? { before } : {}), limit }) }
      },
    },
    {
      method: 'GET',
      path: '/api/v1/events/stream',
      access: 'read',
      doc: {
        summary: 'New events as server-sent events (`event: grail`, `id:` the event id, data the event)',
        description:
          'Honours Last-Event-ID (or ?lastEventId=): a reconnecting client first gets what it missed. A comment line every 15 s keeps the stream open.',
        tags: ['events'],
        query: {
          lastEventId: {
            schema: { type: 'integer', minimum: 0 },
            description: 'as the Last-Event-ID header',
          },
        },
        response: { mediaType: 'text/event-stream', schema: { type: 'string' } },
      },
      handle: async (r) => {
        d.streams.open(ctx.events, r.res, {
          after: lastEventIdOf(r.req, r.query),
          heartbeatMs: d.heartbeatMs,
        })
        return 'streamed'
      },
    },
    {
      method: 'GET',
      path: '/api/v1/reconciler',
      access: 'read',
      doc: {
        summary: 'Reconcile figures of each environment grail serve reconciles',
        tags: ['reconciler'],
        response: list('ReconcileStats'),
      },
      handle: async () => ({ json: ctx.stats() }),
    },
    {
      method: 'GET',
      path: '/metrics',
      access: 'read',
      doc: {
        summary: 'Prometheus metrics (text format 0.0.4)',
        tags: ['metrics'],
        response: { mediaType: 'text/plain; version=0.0.4', schema: { type: 'string' } },
      },
      handle: async (r) => {
        const body = renderMetrics(await fleetMetrics(ctx, d.driftCache))
        r.res.writeHead(200, {
          ...SECURITY_HEADERS,
          'Content-Type': 'text/plain; version=0.0.4; charset=utf-8',
          'Content-Length': String(Buffer.byteLength(body)),
          'Cache-Control': 'no-store',
        })
        r.res.end(body)
        return 'streamed'
      },
    },
  ]
}
