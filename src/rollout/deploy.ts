import { setTimeout as sleep } from 'node:timers/promises'
import type { ReleaseRecord } from '../state/index.js'
import { appendEvent, setReleaseStatus } from '../state/index.js'
import { probeOnce } from './health.js'
import { mapLimit } from '../util/pool.js'
import {
  GateFailed,
  STOP_CONCURRENCY,
  type Serving,
  destroyInstance,
  effectiveCheck,
  launch,
  route,
} from './instances.js'
import type { RolloutContext, RolloutResult } from './types.js'

interface Run {
  ctx: RolloutContext
  release: ReleaseRecord
  /** instances of the previous release still serving */
  old: Serving[]
  /** the previous release, to relaunch retired instances on rollback */
  previous: ReleaseRecord | null
  fresh: Serving[]
  retired: number
  created: string[]
  destroyed: string[]
}

async function retire(run: Run, victims: Serving[], reason: string): Promise<void> {
  run.old = run.old.filter((o) => !victims.includes(o))
  await route(run.ctx, [...run.old, ...run.fresh])
  // out of the routes already: they stop side by side
  await mapLimit(victims, STOP_CONCURRENCY, async (v) => {
    await destroyInstance(run.ctx, v.id, reason)
    run.destroyed.push(v.id)
    run.retired++
  })
}

async function launchBatch(run: Run, count: number): Promise<void> {
  const results = await Promise.allSettled(Array.from({ length: count }, () => launch(run.ctx, run.release)))
  for (const r of results) if (r.status === 'fulfilled') run.fresh.push(r.value)
  for (const r of results) if (r.status === 'fulfilled') run.created.push(r.value.id)
  const failed = results.find((r) => r.status === 'rejected')
  if (failed) throw (failed as PromiseRejectedResult).reason
}

/**
 * Undoes a failed rollout: instances retired so far are relaunched from the previous release and take
 * traffic again before the new ones are drained and destroyed, so the old release keeps serving.
 */
async function rollBack(run: Run, reason: string): Promise<void> {
  const { ctx } = run
  if (run.previous) {
    for (let i = 0; i < run.retired; i++) run.old.push(await launch(ctx, run.previous))
  }
  const fresh = run.fresh
  run.fresh = []
  await route(ctx, run.old)
  await mapLimit(fresh, STOP_CONCURRENCY, async (f) => {
    await destroyInstance(ctx, f.id, `rollback: ${reason}`)
    run.destroyed.push(f.id)
  })
  setReleaseStatus(ctx.db, ctx.service, run.release.number, 'rolled-back', reason)
  appendEvent(ctx.db, 'release.rolled-back', `${ctx.service}#${run.release.number}`, {
    environment: ctx.environment,
    reason,
  })
  ctx.onEvent?.({ type: 'rolled-back', release: run.release.number, reason })
}

/** start-first, maxSurge at a time: new instances pass their gate and take traffic before old ones go. */
async function rolling(run: Run): Promise<void> {
  const { ctx } = run
  const step = Math.max(1, ctx.rollout.maxSurge || ctx.rollout.maxUnavailable)
  while (run.fresh.length < ctx.replicas) {
    const n = Math.min(step, ctx.replicas - run.fresh.length)
    if (ctx.rollout.order === 'stop-first')
      await retire(run, run.old.slice(0, n), `replaced by release ${run.release.number}`)
    await launchBatch(run, n)
    await route(ctx, [...run.old, ...run.fresh])
    if (ctx.rollout.order === 'start-first')
      await retire(run, run.old.slice(0, n), `replaced by release ${run.release.number}`)
  }
}

/** The whole new set passes its gates, traffic switches at once, the old set stays for the bake time. */
async function blueGreen(run: Run): Promise<void> {
  await launchBatch(run, run.ctx.replicas)
  await route(run.ctx, run.fresh)
  if (run.ctx.rollout.bake > 0) await sleep(run.ctx.rollout.bake)
}

/** How many canaries: `canary.instances`, else `canary.percent` of the replicas (at least one). */
export function canarySize(ctx: RolloutContext): number {
  const c = ctx.rollout.canary
  const n = c?.instances ?? (c?.percent !== undefined ? Math.ceil((ctx.replicas * c.percent) / 100) : 1)
  return Math.max(1, Math.min(ctx.replicas, n))
}

/**
 * Watches the canaries through the bake time; `unhealthyThreshold` failed probes in a row on one of them
 * aborts the release.
 */
async function bakeWatch(run: Run): Promise<void> {
  const { ctx } = run
  const check = effectiveCheck(ctx)
  const until = Date.now() + ctx.rollout.bake
  const failures = new Map<string, number>()
  while (Date.now() < until) {
    await sleep(Math.min(check?.interval ?? 500, Math.max(0, until - Date.now())))
    if (!check) continue
    for (const c of run.fresh) {
      const r = await probeOnce(check, {
        host: c.backend?.host ?? '127.0.0.1',
        port: c.backend?.port ?? 0,
        exec: (argv) => ctx.provider.exec({ id: c.id, provider: ctx.provider.name }, argv),
      })
      const n = r.ok ? 0 : (failures.get(c.id) ?? 0) + 1
      failures.set(c.id, n)
      if (n >= check.unhealthyThreshold)
        throw new GateFailed(c.id, `failed during the canary bake (last probe: ${r.detail})`)
    }
  }
}

/** A few new instances share the traffic with the old set for the bake time; then the rest rolls. */
async function canary(run: Run): Promise<void> {
  const n = canarySize(run.ctx)
  await launchBatch(run, n)
  await route(run.ctx, [...run.old, ...run.fresh])
  await bakeWatch(run)
  await retire(run, run.old.slice(0, n), `replaced by release ${run.release.number}`)
  await rolling(run)
}

/**
 * Rolls a release out by replacement with the service's strategy; a failed health gate rolls back and
 * the previous release keeps serving. The release becomes `active` (and the previous one `superseded`)
 * only when every new instance is healthy and every old one is gone.
 */
export async function rollOut(
  ctx: RolloutContext,
  release: ReleaseRecord,
  current: { previous: ReleaseRecord | null; serving: Serving[] },
): Promise<RolloutResult> {
  const run: Run = {
    ctx,
    release,
    old: [...current.serving],
    previous: current.previous,
    fresh: [],
    retired: 0,
    created: [],
    destroyed: [],
  }
  try {
    if (ctx.rollout.strategy === 'blue-green') await blueGreen(run)
    else if (ctx.rollout.strategy === 'canary') await canary(run)
    else await rolling(run)
    await retire(run, [...run.old], `replaced by release ${release.number}`)
  } catch (err) {
    if (!(err instanceof GateFailed)) throw err
    const reason = `health check failed on ${err.instance}: ${err.reason}`
    await rollBack(run, reason)
    return {
      release: { ...release, status: 'rolled-back', reason },
      ok: false,
      reason,
      created: run.created,
      destroyed: run.destroyed,
    }
  }
  if (current.previous) setReleaseStatus(ctx.db, ctx.service, current.previous.number, 'superseded')
  setReleaseStatus(ctx.db, ctx.service, release.number, 'active')
  appendEvent(ctx.db, 'release.active', `${ctx.service}#${release.number}`, {
    environment: ctx.environment,
    image: release.imageDigest,
  })
  ctx.onEvent?.({ type: 'release-active', release: release.number })
  return {
    release: { ...release, status: 'active' },
    ok: true,
    created: run.created,
    destroyed: run.destroyed,
  }
}
