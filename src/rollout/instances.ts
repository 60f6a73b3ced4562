import { randomBytes } from 'node:crypto'
import { GrailError } from '../errors.js'
import type { Backend } from '../proxy/types.js'
import type { InstanceHandle, RuntimeProvider } from '../runtime/types.js'
import type { ConfigBundle } from '../plan/config-bundle.js'
import type { HealthCheck } from '../spec/types.js'
import type { Db, ReleaseRecord } from '../state/index.js'
import { recordInstance, setInstancePhase } from '../state/index.js'
import { mapLimit } from '../util/pool.js'
import { backendCheckOf, withCheck } from './backend-check.js'
import { crashPoint } from '../util/crash-points.js'
import { checkFor, waitHealthy } from './health.js'
import type { RolloutContext } from './types.js'

/** A healthy instance taking (or ready to take) traffic. */
export interface Serving {
  id: string
  release: number
  /** where the proxy reaches it, with the check the proxy runs on it; null when it does not listen */
  backend: Backend | null
  /** Grail's last probes count it as unhealthy: it keeps its place in the rollout but gets no traffic */
  unhealthy?: boolean
}

/**
 * The backends to route to: the serving instances that listen, minus those Grail counts as unhealthy.
 * When Grail counts every one unhealthy, all stay listed: Grail's probes follow the spec's check, which
 * may be a new one being rolled out, and the proxy's own checks still eject those that really fail.
 */
export function backendsOf(serving: readonly Serving[]): Backend[] {
  const listening = serving.filter((s) => s.backend !== null)
  const healthy = listening.filter((s) => s.unhealthy !== true)
  return (healthy.length > 0 ? healthy : listening).flatMap((s) => (s.backend ? [s.backend] : []))
}

export class GateFailed extends Error {
  constructor(
    readonly instance: string,
    readonly reason: string,
  ) {
    super(`${instance}: ${reason}`)
  }
}

/** Instance ids are at most this long: they are the instance's hostname, which a DNS label bounds. */
export const MAX_INSTANCE_ID = 63

/**
 * A new instance's id: `<service>-r<release>-<6 hex>`, with the service name cut short when the whole
 * would pass 63 characters. Release numbers grow without bound, so the id's length must not: at the
 * largest safe integer (16 digits) the tail is 25 characters and 38 of the service name remain, enough
 * to recognise it; the random part keeps ids unique, the service is recorded beside the id anyway.
 */
export function instanceId(service: string, release: number, suffix: string): string {
  const tail = `-r${release}-${suffix}`
  const room = MAX_INSTANCE_ID - tail.length
  const head = service.length <= room ? service : service.slice(0, room).replace(/-+$/, '')
  return head + tail
}

/** The check a rollout gates on: the declared one, else a TCP connect to the service's port. */
export function effectiveCheck(ctx: RolloutContext): HealthCheck | undefined {
  return checkFor(ctx.healthcheck, ctx.port)
}

/**
 * Asks the provider for the instance. A create that fails leaves nothing behind at the provider (its
 * contract), so the `creating` record is closed as destroyed with the error as its reason: no later
 * status, apply or down looks for an instance that never was.
 */
async function createOrForget(
  ctx: RolloutContext,
  id: string,
  spec: Parameters<RuntimeProvider['create']>[0],
): Promise<InstanceHandle> {
  try {
    return await ctx.provider.create(spec)
  } catch (err) {
    setInstancePhase(ctx.db, id, 'destroyed', {
      reason: `create failed: ${err instanceof Error ? err.message : String(err)}`,
    })
    throw err
  }
}

/**
 * Creates, starts and health-gates one instance of a release. State is written before each side effect
 * (`creating` before create, `starting` before start), so a killed apply leaves a record the next run can
 * finish or undo. A failed gate destroys the instance and throws `GateFailed` with the reason.
 */
export async function launch(ctx: RolloutContext, release: ReleaseRecord): Promise<Serving> {
  const id =
    ctx.newId?.(release.number) ?? instanceId(ctx.service, release.number, randomBytes(3).toString('hex'))
  const config = release.config as ConfigBundle
  recordInstance(ctx.db, {
    id,
    service: ctx.service,
    environment: ctx.environment,
    releaseNumber: release.number,
    provider: ctx.provider.name,
  })
  crashPoint('instance-recorded')
  const h = await createOrForget(ctx, id, {
    id,
    labels: {
      project: ctx.project,
      environment: ctx.environment,
      service: ctx.service,
      release: release.number,
    },
    image: { name: release.imageName, version: release.imageVersion, digest: release.imageDigest },
    env: config.env,
    files: config.files,
    volumes: ctx.volumes,
    port: ctx.port,
    ...(config.resources ? { resources: config.resources } : {}),
    network: config.network ?? 'private',
    userns: config.userns ?? 'private',
  })
  crashPoint('instance-created')
  setInstancePhase(ctx.db, id, 'starting')
  ctx.onEvent?.({ type: 'instance-created', instance: id, release: release.number })
  await ctx.provider.start(h)
  crashPoint('instance-started')
  const endpoint = ctx.port === undefined ? null : await ctx.provider.endpoint(h, ctx.port)
  const check = effectiveCheck(ctx)
  if (check) {
    const gate = await waitHealthy(
      check,
      {
        host: endpoint?.host ?? '127.0.0.1',
        port: endpoint?.port ?? 0,
        exec: (argv) => ctx.provider.exec(h, argv),
      },
      {
        timeoutMs: ctx.rollout.healthTimeout,
        alive: async () => (await ctx.provider.inspect(h)).state === 'running',
      },
    )
    if (!gate.healthy) {
      setInstancePhase(ctx.db, id, 'failed', { reason: gate.reason })
      ctx.onEvent?.({ type: 'instance-unhealthy', instance: id, reason: gate.reason })
      await destroyInstance(ctx, id, `health gate failed: ${gate.reason}`)
      throw new GateFailed(id, gate.reason)
    }
    ctx.onEvent?.({ type: 'instance-healthy', instance: id, probes: gate.probes })
  }
  setInstancePhase(ctx.db, id, 'healthy', endpoint ? { hostPort: endpoint.port } : {})
  crashPoint('instance-healthy')
  const proxyCheck =
    endpoint === null
      ? undefined
      : await backendCheckOf(check, endpoint.port, (p) => ctx.provider.endpoint(h, p))
  return {
    id,
    release: release.number,
    backend: endpoint ? withCheck({ id, host: endpoint.host, port: endpoint.port }, proxyCheck) : null,
  }
}

/**
 * Stops (SIGTERM, then SIGKILL after `graceMs`) and destroys an instance, recording why; volumes stay.
 * `stopping` is written first, so a kill in between leaves a record the next apply finishes.
 */
export async function removeInstance(
  db: Db,
  provider: RuntimeProvider,
  id: string,
  opts: { reason: string; graceMs: number },
): Promise<void> {
  setInstancePhase(db, id, 'stopping', { reason: opts.reason })
  crashPoint('old-stopping')
  const h: InstanceHandle = { id, provider: provider.name }
  try {
    await provider.stop(h, { graceMs: opts.graceMs })
    await provider.destroy(h)
  } catch (err) {
    // a provider refuses an id it could never have created (state from an older Grail): nothing of it exists
    if (!(err instanceof GrailError && err.code === 'BAD_INSTANCE_ID')) throw err
  }
  setInstancePhase(db, id, 'destroyed', { reason: opts.reason })
}

/**
 * Instances stopped at once by `down`, apply's destroy actions and recovery: each stop mostly waits (on
 * the process to exit, on runc), so a handful in flight cut `down` of many instances by that factor,
 * while a bound keeps 167 instances from starting 167 runc processes at the same moment.
 */
export const STOP_CONCURRENCY = 8

/** Removes several instances (as `removeInstance`, each with its reason), up to `STOP_CONCURRENCY` at a time. */
export async function removeInstances(
  db: Db,
  provider: RuntimeProvider,
  items: ReadonlyArray<{ id: string; reason: string }>,
  opts: { graceMs: number },
): Promise<void> {
  await mapLimit(items, STOP_CONCURRENCY, (i) =>
    removeInstance(db, provider, i.id, { reason: i.reason, graceMs: opts.graceMs }),
  )
}

/** Removes an instance of a rollout, after its drain time. */
export async function destroyInstance(ctx: RolloutContext, id: string, reason: string): Promise<void> {
  await removeInstance(ctx.db, ctx.provider, id, { reason, graceMs: Math.max(ctx.rollout.drain, 1000) })
  ctx.onEvent?.({ type: 'instance-destroyed', instance: id, reason })
}

/** Points the router at exactly these instances (atomic; resolves after removed ones drained). */
export async function route(ctx: RolloutContext, serving: readonly Serving[]): Promise<void> {
  if (!ctx.router) return
  const backends = backendsOf(serving)
  await ctx.router.setBackends(backends)
  crashPoint('traffic-switched')
  ctx.onEvent?.({ type: 'traffic', backends: backends.map((b) => b.id) })
}
