/**
 * JSON Schemas (2020-12, as OpenAPI 3.1 takes them) of every body the API answers with. The engine's
 * shapes are TypeScript interfaces, so these are written beside them once, here; the API's end-to-end
 * test validates real responses against them, so a field the code adds or drops fails that test.
 */
export type JsonSchema = { [key: string]: unknown }

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` })
const str: JsonSchema = { type: 'string' }
const int: JsonSchema = { type: 'integer' }
const num: JsonSchema = { type: 'number' }
const bool: JsonSchema = { type: 'boolean' }
const time: JsonSchema = { type: 'string', format: 'date-time' }
const digest: JsonSchema = { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' }
const nullable = (s: JsonSchema): JsonSchema => ({ anyOf: [s, { type: 'null' }] })
const arr = (items: JsonSchema): JsonSchema => ({ type: 'array', items })
const strings = arr(str)

/** An object with exactly these properties; all required unless named in `optional`. */
function obj(props: Record<string, JsonSchema>, optional: string[] = []): JsonSchema {
  return {
    type: 'object',
    properties: props,
    required: Object.keys(props).filter((k) => !optional.includes(k)),
    additionalProperties: false,
  }
}

/** An object with at least these properties (a union member, an engine type that grows). */
function open(props: Record<string, JsonSchema>, required: string[] = Object.keys(props)): JsonSchema {
  return { type: 'object', properties: props, required }
}

const release = obj({
  service: str,
  environment: str,
  number: int,
  imageName: str,
  imageVersion: int,
  imageDigest: digest,
  configDigest: digest,
  config: {},
  status: { enum: ['pending', 'active', 'superseded', 'failed', 'rolled-back'] },
  reason: nullable(str),
  createdAt: time,
  promotedFrom: nullable(str),
})

const proxy = obj(
  {
    environment: str,
    service: str,
    listen: str,
    state: { enum: ['up', 'restarted', 'down', 'stopped'] },
    pid: int,
    keeper: int,
    detail: str,
    ejected: arr(obj({ id: str, reason: str, since: str })),
  },
  ['pid', 'keeper', 'ejected'],
)

const instance = obj(
  {
    id: str,
    service: str,
    release: int,
    image: str,
    digest,
    createdAt: time,
    health: str,
    probe: nullable(obj({ at: time, ok: bool, detail: str, failures: int })),
    pid: nullable(int),
    port: nullable(int),
  },
  ['digest'],
)

const imageRef = obj({ name: str, version: int, digest })

const action = {
  oneOf: [
    open({
      kind: { const: 'deploy' },
      service: str,
      from: nullable(int),
      image: imageRef,
      configDigest: digest,
      reason: str,
    }),
    open({ kind: { const: 'replace' }, service: str, instance: str, release: int, cause: str, reason: str }),
    open({ kind: { const: 'scale-up' }, service: str, release: int, count: int, reason: str }),
    open({ kind: { const: 'scale-down' }, service: str, instances: strings, reason: str }),
    open({ kind: { const: 'destroy' }, service: str, instance: str, cause: str, reason: str }),
  ],
}

const plan = obj({
  environment: str,
  actions: arr(ref('Action')),
  waiting: arr(
    obj({ service: str, instance: nullable(str), reason: str, nextAttemptAt: time, log: strings }),
  ),
  builds: arr(obj({ image: str, services: strings, reason: str })),
  blocked: arr(obj({ service: str, image: imageRef, reason: str, hint: str })),
})

const rollout = {
  release: ref('Release'),
  ok: bool,
  reason: str,
  created: strings,
  destroyed: strings,
}
const rolloutResult = obj(rollout, ['reason'])

const serving = obj({ service: str, release: int, url: str }, ['release', 'url'])

const packageInfo = obj({ name: str, version: str, architecture: str })

const image = obj({
  name: str,
  version: int,
  digest,
  configDigest: digest,
  buildKey: str,
  parentDigest: { anyOf: [digest, { type: 'null' }] },
  base: {},
  gitCommit: nullable(str),
  createdAt: time,
  size: int,
  packages: arr(packageInfo),
  status: { enum: ['active', 'deprecated', 'revoked'] },
  statusReason: nullable(str),
  outOfDate: nullable(str),
  runningIn: arr(obj({ environment: str, service: str, release: int })),
})

const fileFinding = obj(
  {
    kind: { enum: ['A', 'C', 'D'] },
    path: str,
    what: strings,
    class: { enum: ['unexplained', 'excused', 'expected'] },
    hotfix: int,
    diff: str,
  },
  ['hotfix', 'diff'],
)

const drift = obj({
  environment: str,
  at: time,
  instances: arr(
    obj(
      {
        instance: str,
        service: str,
        release: int,
        files: arr(fileFinding),
        runtime: arr(
          obj({ kind: str, detail: str, class: { enum: ['unexplained', 'excused', 'expected'] } }),
        ),
        touched: int,
        expiredHotfix: int,
        unexplained: int,
        excused: int,
        expected: int,
      },
      ['expiredHotfix'],
    ),
  ),
  desired: arr(obj({ service: str, reason: str })),
  drifted: strings,
})

const event = obj({
  id: int,
  at: time,
  kind: str,
  subject: str,
  actor: str,
  data: { type: 'object' },
})

const hotfixChange = obj(
  {
    kind: { enum: ['A', 'C', 'D'] },
    path: str,
    type: str,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    sha256: str,
    linkname: str,
  },
  ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'linkname'],
)

/** Every named schema of the document (`components.schemas`). */
export const SCHEMAS: Record<string, JsonSchema> = {
  Error: obj({
    error: obj({ code: str, message: str, hint: str, details: strings, note: str }, [
      'hint',
      'details',
      'note',
    ]),
  }),
  Environment: obj({ name: str, provider: str, services: strings }),
  Release: release,
  Instance: instance,
  Proxy: proxy,
  Status: obj({
    environment: str,
    instances: arr(ref('Instance')),
    crashLoops: arr(
      obj({
        service: str,
        release: int,
        restarts: int,
        summary: str,
        nextAttemptAt: time,
        instance: nullable(str),
        log: strings,
      }),
    ),
    releases: arr(ref('Release')),
    proxies: arr(ref('Proxy')),
  }),
  Service: obj({
    name: str,
    image: str,
    replicas: int,
    activeRelease: nullable(
      obj({
        number: int,
        imageName: str,
        imageVersion: int,
        imageDigest: digest,
        createdAt: time,
        promotedFrom: nullable(str),
      }),
    ),
    maxAgeMs: nullable(int),
    driftPolicy: { enum: ['fix', 'report', 'ignore'] },
    publish: nullable(str),
  }),
  Action: action,
  Plan: plan,
  Drift: drift,
  Hotfix: obj({
    id: int,
    instance: str,
    environment: str,
    service: str,
    actor: str,
    reason: str,
    command: strings,
    status: { enum: ['running', 'recorded', 'interrupted'] },
    exitCode: nullable(int),
    createdAt: time,
    expiresAt: time,
    live: bool,
    files: arr(hotfixChange),
  }),
  Image: image,
  Event: event,
  EventPage: obj({ events: arr(ref('Event')), next: nullable(int) }),
  ReconcileStats: obj({
    environment: str,
    passes: int,
    lastAt: nullable(time),
    lastMs: num,
    totalMs: num,
    applied: { type: 'object', additionalProperties: int },
    rollouts: obj({ ok: int, failed: int }),
    lastError: nullable(str),
  }),
  RolloutResult: rolloutResult,
  Deploy: obj({
    plan: ref('Plan'),
    results: arr(ref('RolloutResult')),
    recovered: strings,
    failed: arr(obj({ service: str, instance: str, reason: str })),
    proxies: arr(ref('Proxy')),
    serving: arr(serving),
    urls: arr(obj({ service: str, url: str })),
    pulled: strings,
  }),
  Rollback: obj({ ...rollout, environment: str, promoted: bool, nextApply: nullable(str) }, ['reason']),
  Recycle: obj({ environment: str, actions: arr(ref('Action')), done: bool }),
  Promote: obj({
    service: str,
    from: obj({ environment: str, release: int }),
    to: obj({ environment: str, release: nullable(int) }),
    imageDigest: digest,
    configDigest: digest,
    deployed: bool,
    rollout: nullable(ref('RolloutResult')),
    serving: arr(serving),
  }),
  Revoke: obj({
    revoked: arr(imageRef),
    children: arr(obj({ name: str, version: int })),
  }),
  Pin: obj({ name: str, version: int, digest, pinned: bool }),
  // the patch pipeline's report: its shape is `grail outdated --json`'s, described there
  Outdated: {},
}

export { ref as schemaRef }

/** The body of a write: `reason` and the keys the write takes. */
export function writeBody(props: Record<string, JsonSchema> = {}): JsonSchema {
  return {
    type: 'object',
    properties: {
      reason: { type: 'string', minLength: 1, description: 'why: recorded in the event log' },
      ...props,
    },
    required: ['reason'],
    additionalProperties: false,
  }
}
