import { applyEnvironment } from '../engine/apply.js'
import { gatherFacts } from '../engine/facts.js'
import { GrailError } from '../errors.js'
import type { Action, Plan } from '../plan/index.js'
import { nextDeadline, plan as planFrom } from '../plan/index.js'
import { dataPlaneKind } from '../proxy/dataplane.js'
import { dataPlaneDir, superviseProxies } from '../rollout/proxies.js'
import {
  acquireLock,
  appendEvent,
  listEvents,
  listReleases,
  liveInstances,
  releaseLock,
} from '../state/index.js'
import { errorFields, type OpenedEnvironment, type ReconcileStats, type ServerContext } from './context.js'

/**
 * What the reconciler applies on its own: replacements (missing, crashed, unhealthy, drifted, recycled,
 * an expired hotfix), replicas back to the spec's count, leftovers of an older release, orphans, and a
 * new release only where the running image is revoked. A new image or config from the spec, and a
 * service removed from the spec, wait for `grail apply` (or the patch policy): the daemon keeps what was
 * applied, it does not deploy what someone has not asked for.
 */
export function reconcilerApplies(action: Action): boolean {
  switch (action.kind) {
    case 'replace':
    case 'scale-up':
    case 'scale-down':
      return true
    case 'destroy':
      return action.cause !== 'removed'
    case 'deploy':
      return action.cause === 'revoked'
  }
}

/** One action as the event log records it. */
function actionEvent(a: Action): Record<string, unknown> {
  return {
    kind: a.kind,
    service: a.service,
    ...('instance' in a ? { instance: a.instance } : {}),
    ...('cause' in a ? { cause: a.cause } : {}),
    reason: a.reason,
  }
}

/** The outcome of one pass. */
export type PassOutcome =
  | { kind: 'idle'; pending: string[] }
  | { kind: 'locked'; holder: string }
  | {
      kind: 'applied'
      actions: Action[]
      recovered: string[]
      failed: string[]
      rollouts: { ok: number; failed: number }
    }

/** A step a killed daemon began and did not finish, read back from the event log at start. */
interface Interrupted {
  eventId: number
  at: string
  actions: unknown
}

/**
 * The loop of one environment: observe, plan at `now` with the pure planner, apply what the policy
 * allows under the apply lock (taken per change, left free in between for a `grail apply` by hand),
 * record. A pass that finds the lock held by someone else leaves everything to them and comes back.
 */
export class Reconciler {
  readonly stats: ReconcileStats
  private stopped = false
  private soon = false
  private wake: (() => void) | undefined
  private loop: Promise<void> | undefined
  /** what was last reported of each instance the drift policy keeps, and of pending changes */
  private readonly reported = new Map<string, string>()
  private interrupted: Interrupted | undefined
  /** when planning next finds something due by the clock alone (a TTL, an age, a backoff) */
  private deadline: number | undefined
  private lastPassAt = 0
  private watcher: { close(): void } | undefined
  private healthTimer: NodeJS.Timeout | undefined
  private passing = false
  private delayed: NodeJS.Timeout | undefined
  /** whether HAProxy answered the last route check (a change to `false` asks for a pass) */
  private dataPlaneAnswered = true

  constructor(
    private readonly ctx: ServerContext,
    readonly environment: string,
    private readonly opts: {
      /** the longest wait between passes when neither the provider nor the clock asks for one */
      intervalMs: number
      /** the shortest gap between two passes the provider's events cause (a busy instance writing) */
      minGapMs?: number
      /**
       * how often the data plane's own view is read (cheap: its runtime API): a server its checks
       * ejected, or a data plane that is down, asks for a pass at once. Default 2 s; 0: never.
       */
      routeCheckMs?: number
      holder: string
    },
  ) {
    this.stats = {
      environment,
      passes: 0,
      lastAt: null,
      lastMs: 0,
      totalMs: 0,
      applied: {},
      rollouts: { ok: 0, failed: 0 },
      lastError: null,
    }
    this.interrupted = interruptedStep(ctx, environment)
    if (this.interrupted) {
      appendEvent(ctx.db, 'reconcile.interrupted', environment, {
        startedAt: this.interrupted.at,
        event: this.interrupted.eventId,
        actions: this.interrupted.actions,
      })
    }
  }

  /**
   * Runs passes until `stop()`: when the provider reports a change (an instance exited, a file changed
   * inside one), at the next deadline of the clock, after an API write (`nudge`), and at least every
   * interval in any case.
   */
  start(): void {
    this.loop ??= (async () => {
      await this.watchProvider()
      const every = this.opts.routeCheckMs ?? 2000
      if (every > 0) {
        this.healthTimer = setInterval(() => void this.checkRoutes(), every)
        this.healthTimer.unref()
      }
      let failures = 0
      while (!this.stopped) {
        const ok = (await this.runPass()) !== undefined
        failures = ok ? 0 : failures + 1
        if (this.stopped) break
        // a failed pass is tried again soon (1 s, doubling up to the interval), not at the next interval
        await this.sleep(failures > 0 ? 1000 * 2 ** Math.min(failures - 1, 10) : undefined)
      }
      this.watcher?.close()
      clearInterval(this.healthTimer)
      clearTimeout(this.delayed)
    })()
  }

  /**
   * Reads what the data plane thinks of each published service's instances: an ejected server (its
   * health check fails: a hung app, a SIGSTOPped process) or a route that is down asks for a pass,
   * which probes, replaces, and brings the data plane back.
   */
  private async checkRoutes(): Promise<void> {
    if (this.passing || this.stopped || dataPlaneKind() !== 'haproxy') return
    try {
      const { routeKey, serversDown } = await import('../proxy/haproxy/index.js')
      const project = this.ctx.project()
      const published = Object.values(project.environments[this.environment]?.services ?? {}).filter(
        (s) => s.publish !== undefined,
      )
      if (published.length === 0) return
      const down = await serversDown(dataPlaneDir(this.ctx.home))
      // a data plane that stops answering asks once; the pass starts it again with its routes
      const answering = down !== undefined
      const wasAnswering = this.dataPlaneAnswered
      this.dataPlaneAnswered = answering
      if (!answering) {
        if (wasAnswering) this.onProviderChange('the data plane does not answer')
        return
      }
      // an ejected server asks every time: replacing it takes a few failed probes, one per pass
      const ejected = published.flatMap((s) => down.get(routeKey(this.environment, s.name)) ?? [])
      if (ejected.length > 0) this.onProviderChange(`${ejected.join(', ')} ejected by the data plane`)
    } catch {
      // the next pass sees whatever made this fail
    }
  }

  private async watchProvider(): Promise<void> {
    try {
      await this.ctx.withEnvironment(this.environment, { lock: false }, async (a) => {
        this.watcher = a.provider.watch?.({ project: a.project.name, environment: this.environment }, (why) =>
          this.onProviderChange(why),
        )
      })
    } catch (err) {
      this.ctx.log.warn(
        { environment: this.environment, err: errorFields(err) },
        'no provider events: polling only',
      )
    }
  }

  private onProviderChange(why: string): void {
    this.ctx.log.debug({ environment: this.environment, why }, 'provider event')
    // our own rollouts change instances too: those events ask for the one pass that follows anyway
    const gap = this.opts.minGapMs ?? 500
    const wait = this.lastPassAt + gap - Date.now()
    if (wait <= 0) this.nudge()
    else if (this.delayed === undefined) {
      // one delayed nudge however many events arrive meanwhile (an instance writing a file a second)
      this.delayed = setTimeout(() => {
        this.delayed = undefined
        this.nudge()
      }, wait)
      this.delayed.unref()
    }
  }

  /** Asks for a pass as soon as the current one (if any) ends. */
  nudge(): void {
    this.soon = true
    this.wake?.()
  }

  /** Stops after the pass under way (a rollout is finished, not cut). */
  async stop(): Promise<void> {
    this.stopped = true
    this.wake?.()
    await this.loop
  }

  /** One pass, timed and logged; an error is recorded and the loop goes on. */
  async runPass(now: number = Date.now()): Promise<PassOutcome | undefined> {
    const started = performance.now()
    const log = this.ctx.log.child({ environment: this.environment })
    this.passing = true
    try {
      const outcome = await this.pass(now)
      if (outcome.kind === 'applied') log.info(outcomeLog(outcome), 'reconciled')
      else if (outcome.kind === 'locked')
        log.info({ holder: outcome.holder }, 'apply lock held: pass skipped')
      this.stats.lastError = null
      return outcome
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      // the same failure every pass is logged once, not every two seconds
      if (this.stats.lastError !== message) {
        log.error({ err: errorFields(err) }, 'reconcile failed')
        appendEvent(this.ctx.db, 'reconcile.error', this.environment, errorFields(err))
      }
      this.stats.lastError = message
      return undefined
    } finally {
      const ms = performance.now() - started
      this.passing = false
      this.lastPassAt = Date.now()
      this.stats.passes++
      this.stats.lastMs = ms
      this.stats.totalMs += ms
      this.stats.lastAt = new Date().toISOString()
    }
  }

  /** Observe, plan, apply what the policy allows, record. */
  async pass(now: number): Promise<PassOutcome> {
    return this.ctx.withEnvironment(this.environment, { lock: false }, async (a) => {
      // a data plane that died is started again with its routes, as status and apply do
      await superviseProxies(a)
      const { input } = await gatherFacts(a, { now })
      const plan = planFrom(input)
      this.deadline = nextDeadline(input, plan)
      this.reportKept(plan)
      const allowed = plan.actions.filter(reconcilerApplies)
      const pending = this.reportPending(plan)
      if (allowed.length === 0 && !needsRecovery(a) && this.interrupted === undefined)
        return { kind: 'idle', pending }
      return this.applyLocked(a, allowed)
    })
  }

  private async applyLocked(a: OpenedEnvironment, planned: Action[]): Promise<PassOutcome> {
    try {
      acquireLock(a.db, 'apply', { holder: this.opts.holder })
    } catch (err) {
      if (err instanceof GrailError && err.code === 'LOCKED') return { kind: 'locked', holder: err.message }
      throw err
    }
    try {
      // written before anything changes: a daemon killed from here on finds it at its next start
      appendEvent(a.db, 'reconcile.start', this.environment, { actions: planned.map(actionEvent) })
      const res = await applyEnvironment(a, { only: reconcilerApplies })
      const failed = res.failed.map((f) => `${f.service}: ${f.reason}`)
      const rollouts = {
        ok: res.results.filter((r) => r.ok).length,
        failed: res.results.filter((r) => !r.ok).length,
      }
      appendEvent(a.db, 'reconcile.done', this.environment, {
        actions: res.plan.actions.map(actionEvent),
        recovered: res.recovered,
        failed,
      })
      if (this.interrupted) {
        appendEvent(a.db, 'reconcile.resumed', this.environment, {
          interrupted: this.interrupted.actions,
          startedAt: this.interrupted.at,
          recovered: res.recovered,
          actions: res.plan.actions.map(actionEvent),
        })
        this.interrupted = undefined
      }
      for (const x of res.plan.actions) {
        const cause = 'cause' in x ? `${x.kind}:${x.cause}` : x.kind
        this.stats.applied[cause] = (this.stats.applied[cause] ?? 0) + 1
      }
      this.stats.rollouts.ok += rollouts.ok
      this.stats.rollouts.failed += rollouts.failed
      return { kind: 'applied', actions: res.plan.actions, recovered: res.recovered, failed, rollouts }
    } finally {
      releaseLock(a.db, 'apply')
    }
  }

  /** One `drift.reported` event per instance and drift summary the `report` policy keeps. */
  private reportKept(plan: Plan): void {
    for (const k of plan.driftKept ?? []) {
      if (k.policy !== 'report') continue
      const key = `drift:${k.instance}`
      if (this.reported.get(key) === k.drift) continue
      this.reported.set(key, k.drift)
      appendEvent(this.ctx.db, 'drift.reported', k.instance, {
        environment: this.environment,
        service: k.service,
        drift: k.drift,
        policy: k.policy,
      })
      this.ctx.log.warn({ environment: this.environment, instance: k.instance, drift: k.drift }, 'drift kept')
    }
  }

  /**
   * What waits for `grail apply` (a new release, an image to build), what is blocked, and what a crash
   * loop holds back: logged once each time it changes.
   */
  private reportPending(plan: Plan): string[] {
    const pending = [
      ...plan.builds.map((b) => `${b.image}: ${b.reason}`),
      ...plan.actions.filter((x) => !reconcilerApplies(x)).map((x) => `${x.service}: ${x.reason}`),
      ...plan.blocked.map((b) => b.reason),
      ...plan.waiting.map((w) => `${w.service}: ${w.reason} (next attempt ${w.nextAttemptAt})`),
    ]
    const key = pending.join('\n')
    if ((this.reported.get('pending') ?? '') !== key) {
      this.reported.set('pending', key)
      if (pending.length > 0)
        this.ctx.log.info({ environment: this.environment, pending }, 'not applied by the daemon')
    }
    return pending
  }

  private sleep(retryMs = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.soon) {
      this.soon = false
      return Promise.resolve()
    }
    const untilDeadline = this.deadline === undefined ? Number.POSITIVE_INFINITY : this.deadline - Date.now()
    const ms = Math.max(0, Math.min(this.opts.intervalMs, untilDeadline, retryMs))
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.wake = () => {
        this.wake = undefined
        this.soon = false
        done()
      }
    })
  }
}

/** A rollout a killed run left half-done: a pending release, an instance not (or no longer) healthy. */
function needsRecovery(a: OpenedEnvironment): boolean {
  return (
    listReleases(a.db, a.environment).some((r) => r.status === 'pending') ||
    liveInstances(a.db, a.environment).some((i) => i.phase !== 'healthy')
  )
}

/** The last `reconcile.start` of the environment with no `reconcile.done` after it: a daemon was killed. */
function interruptedStep(ctx: ServerContext, environment: string): Interrupted | undefined {
  const recent = listEvents(ctx.db, { subject: environment, limit: 500 }).filter((e) =>
    ['reconcile.start', 'reconcile.done', 'reconcile.error', 'reconcile.resumed'].includes(e.kind),
  )
  const last = recent[0]
  if (last?.kind !== 'reconcile.start') return undefined
  return { eventId: last.id, at: last.at, actions: last.data.actions }
}

function outcomeLog(o: Extract<PassOutcome, { kind: 'applied' }>): Record<string, unknown> {
  return {
    actions: o.actions.map(actionEvent),
    ...(o.recovered.length ? { recovered: o.recovered } : {}),
    ...(o.failed.length ? { failed: o.failed } : {}),
    rollouts: o.rollouts,
  }
}
