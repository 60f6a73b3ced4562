import { z } from 'zod'
import {
  NAME_PATTERN,
  absolutePath,
  checkNoDotDot,
  durationSchema,
  envMapSchema,
  integer,
  nameSchema,
  portSchema,
  report,
  scalarString,
} from './schema-common.js'
import { healthcheckSchema } from './schema-health.js'
import { resourcesSchema } from './schema-resources.js'
import { crashLoopSchema, recycleSchema, rolloutSchema } from './schema-rollout.js'
import type { ServiceSpec, VolumeSpec } from './types.js'

const VOLUME_ERROR = 'expected a volume: "NAME:/path" or {name, path, exclusive}'

const volumeSchema = z
  .union(
    [
      z.string({ error: VOLUME_ERROR }),
      z.strictObject({
        name: nameSchema('a volume name').describe(
          'Volume name; the data lives under the project state dir.',
        ),
        path: absolutePath().describe('Absolute mount path inside the instance.'),
        exclusive: z
          .boolean()
          .default(false)
          .describe(
            'Only one instance may hold it at a time (forces `rollout.order: stop-first`). Default `false`.',
          ),
      }),
    ],
    { error: VOLUME_ERROR },
  )
  .transform((v, ctx): VolumeSpec => {
    if (typeof v !== 'string') return v
    const colon = v.indexOf(':')
    const name = v.slice(0, colon)
    const path = v.slice(colon + 1)
    if (colon < 0 || !NAME_PATTERN.test(name) || !path.startsWith('/')) {
      report(ctx, `${VOLUME_ERROR}, found "${v}"`, v, { hint: 'for example "data:/var/lib/app"' })
    } else checkNoDotDot(ctx as unknown as Parameters<typeof checkNoDotDot>[0], path, 'volume path')
    return { name, path, exclusive: false }
  })
  .describe('A volume: `"NAME:/path"` or `{name, path, exclusive}`.')

const publishSchema = z
  .union(
    [
      portSchema,
      z.strictObject({
        port: portSchema.describe('Public port the proxy listens on.'),
        host: z
          .string()
          .min(1)
          .default('127.0.0.1')
          .describe('Address the proxy binds. Default `127.0.0.1`.'),
        tls: z
          .strictObject({
            certificate: z
              .string()
              .min(1)
              .describe('PEM certificate chain file, relative to grail.yaml (leaf first).'),
            key: z.string().min(1).describe('PEM private key file, relative to grail.yaml.'),
          })
          .optional()
          .describe('Terminate TLS on the public port (HTTP/2 and HTTP/1.1 by ALPN).'),
        responseTimeout: durationSchema()
          .optional()
          .describe(
            'How long a request may wait for the response header before it is retried on another instance (idempotent methods) or answered 504. Default `30s`.',
          ),
        accessLog: z
          .boolean()
          .optional()
          .describe('Write one JSON line per request to `.grail/dataplane/access.log`. Default `false`.'),
      }),
    ],
    { error: 'expected a port number (1-65535) or {port, host}' },
  )
  .transform((p) => (typeof p === 'number' ? { port: p, host: '127.0.0.1' } : p))

/** The keys of a service, shared by `services.*` and the per-environment overrides. */
export const serviceShape = {
  image: nameSchema('an image name').describe('The image this service runs: a key of `images`.'),
  replicas: integer('a whole number ≥ 0', 0).default(1).describe('Number of instances. Default `1`.'),
  port: portSchema
    .optional()
    .describe('Port the process listens on inside the instance (given to it as `PORT`).'),
  publish: publishSchema
    .optional()
    .describe(
      'Public port of the proxy in front of the instances: a number, or `{port, host, tls, responseTimeout, accessLog}` (host default `127.0.0.1`).',
    ),
  env: z
    .record(
      envMapSchema().keyType,
      z.union([
        scalarString,
        z.strictObject({
          value: scalarString.describe('The value.'),
          secret: z
            .boolean()
            .default(false)
            .describe('Redact the value in events, logs and output; never printed. Default `false`.'),
        }),
      ]),
    )
    .default({})
    .describe(
      'Environment variables (deploy-time config: a change makes a new release, not a new image): `NAME: value`, or `NAME: {value, secret: true}` for a secret. Default: none.',
    ),
  files: z
    .record(
      absolutePath('an absolute path in the instance'),
      z.union(
        [
          z.string(),
          z.strictObject({
            content: z.string().describe('The content.'),
            secret: z
              .boolean()
              .default(false)
              .describe('The content is a secret: redacted in events, logs and output. Default `false`.'),
          }),
        ],
        { error: 'expected the file content (a string) or {content, secret}' },
      ),
    )
    .default({})
    .describe(
      'Deploy-time files: absolute path in the instance → content, or `{content, secret: true}`. Default: none.',
    ),
  volumes: z
    .array(volumeSchema)
    .default([])
    .describe(
      'Mutable state that survives instance replacement: `"NAME:/path"` or `{name, path, exclusive}`. Default: none.',
    ),
  healthcheck: healthcheckSchema.optional().describe("Health check; overrides the image's."),
  rollout: rolloutSchema.prefault({}).describe('How a new release replaces the running instances.'),
  drift: z
    .strictObject({
      ignore: z
        .array(z.string())
        .default([])
        .describe('Globs of in-instance paths whose changes are expected, not drift. Default: none.'),
      policy: z
        .enum(['fix', 'report', 'ignore'])
        .default('fix')
        .describe(
          'What apply and `grail serve` do with an instance that has unexplained drift: `fix` replaces it, `report` records a `drift.reported` event and leaves it, `ignore` leaves it silently (`grail drift` lists it all the same, `grail drift --fix` replaces it). An expired hotfix is replaced whatever the policy. Default `fix`.',
        ),
    })
    .prefault({})
    .describe('Drift detection settings.'),
  recycle: recycleSchema.prefault({}).describe('Scheduled replacement of old instances.'),
  crashLoop: crashLoopSchema
    .prefault({})
    .describe('Crash-loop detection: after this many restarts, apply waits out a growing backoff.'),
  network: z
    .enum(['private', 'host'], { error: 'expected private (a network namespace per instance) or host' })
    .default('private')
    .describe(
      "`private`: each instance has its own network namespace, reached by the proxy on a link only this host has, with no outbound network; `host`: it shares the host's network and gets a free loopback port as `PORT`. Default `private`.",
    ),
  userns: z
    .enum(['private', 'host'], {
      error: 'expected private (root in an instance is not root on the host) or host',
    })
    .default('private')
    .describe(
      "`private`: a user namespace maps root and every uid of an instance to an unprivileged host id range of the project; `host`: the instance's root is the host's root (see docs/deploying.md). Default `private`.",
    ),
  resources: resourcesSchema
    .optional()
    .describe(
      'Limits of each instance (`memory`, `cpus`, `pids`); a change makes a new release. Default: none.',
    ),
}

type ServiceOut = z.output<z.ZodObject<typeof serviceShape>>
type Ctx = z.core.ParsePayload<ServiceOut>

/** Rules that span several keys of one service. */
function checkService(ctx: Ctx): void {
  const s = ctx.value
  const r = s.rollout
  if (r.strategy === 'rolling' && r.maxSurge === 0 && r.maxUnavailable === 0) {
    report(
      ctx,
      'maxSurge and maxUnavailable are both 0: a rolling update could never replace an instance',
      r,
      {
        path: ['rollout'],
        hint: 'set maxSurge: 1 (start a new instance first) or maxUnavailable: 1',
      },
    )
  }
  if (r.canary && r.strategy !== 'canary') {
    report(ctx, `canary settings need strategy: canary, found strategy: ${r.strategy}`, r.canary, {
      path: ['rollout', 'canary'],
      hint: 'set rollout.strategy: canary, or remove rollout.canary',
    })
  }
  const exclusive = s.volumes.find((v) => v.exclusive)
  if (exclusive && r.order === 'start-first') {
    report(
      ctx,
      `order: start-first would run two instances on the exclusive volume "${exclusive.name}"`,
      r.order,
      {
        path: ['rollout', 'order'],
        hint: 'use order: stop-first (the default for services with an exclusive volume)',
      },
    )
  }
  if (exclusive && r.strategy !== 'rolling') {
    report(
      ctx,
      `strategy: ${r.strategy} runs two sets at once, but volume "${exclusive.name}" is exclusive`,
      r.strategy,
      {
        path: ['rollout', 'strategy'],
        hint: 'use strategy: rolling with order: stop-first for a service with exclusive state',
      },
    )
  }
  const seen = new Map<string, string>()
  s.volumes.forEach((v, i) => {
    for (const [what, value] of [
      ['name', v.name],
      ['path', v.path],
    ] as const) {
      if (seen.has(`${what}:${value}`)) {
        report(ctx, `volume ${what} "${value}" is used twice`, v, { path: ['volumes', i] })
      }
      seen.set(`${what}:${value}`, what)
    }
  })
  if (s.publish && s.port === undefined) {
    report(ctx, 'publish needs port: the port the instances listen on', s.publish, {
      path: ['publish'],
      hint: 'add port: 8080 (or whatever the process listens on)',
    })
  }
}

/** A service: a set of identical instances of one image, normalised to `ServiceSpec` minus its name. */
export const serviceSchema = z
  .strictObject(serviceShape)
  .check(checkService)
  .transform((s): Omit<ServiceSpec, 'name'> => {
    const exclusive = s.volumes.some((v) => v.exclusive)
    const { order, canary, ...rest } = s.rollout
    const plain = <T extends string>(
      m: Record<string, string | ({ secret: boolean } & Record<T, string>)>,
      k: T,
    ) => Object.fromEntries(Object.entries(m).map(([name, v]) => [name, typeof v === 'string' ? v : v[k]]))
    const marked = (m: Record<string, string | { secret: boolean }>) =>
      Object.entries(m)
        .filter(([, v]) => typeof v !== 'string' && v.secret)
        .map(([name]) => name)
        .sort()
    return {
      ...s,
      env: plain(s.env, 'value'),
      files: plain(s.files, 'content'),
      secret: { env: marked(s.env), files: marked(s.files) },
      rollout: {
        ...rest,
        order: order ?? (exclusive ? 'stop-first' : 'start-first'),
        ...(canary ? { canary } : s.rollout.strategy === 'canary' ? { canary: { instances: 1 } } : {}),
      },
    }
  })
  .describe(
    'A service: `replicas` identical instances of one image, replaced (never patched) on every change.',
  )

/** Per-environment overrides of a service: the same keys, all optional and without defaults. */
export const serviceOverrideSchema = z
  .strictObject(
    Object.fromEntries(
      Object.entries(serviceShape).map(([key, s]) => {
        const inner = s instanceof z.ZodDefault || s instanceof z.ZodPrefault ? s.unwrap() : s
        const bare = inner instanceof z.ZodOptional ? inner.unwrap() : inner
        return [key, bare.optional().describe(`Overrides the service's \`${key}\`.`)]
      }),
    ) as unknown as {
      [K in keyof typeof serviceShape]: z.ZodOptional<z.ZodType<unknown, z.input<(typeof serviceShape)[K]>>>
    },
  )
  .describe(
    "Overrides for one service in this environment: any keys of `services.<name>`, merged into the service's.",
  )
