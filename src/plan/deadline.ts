import type { Plan, PlanInput } from './index.js'
import { inWindow, jitterFraction } from './recycle.js'

/** The next instant (epoch ms, after `now`) at which a daily UTC window "HH:MM-HH:MM" opens. */
export function nextWindowOpen(window: string, now: number): number {
  const m = /^(\d\d):(\d\d)-/.exec(window)
  const from = m ? (Number(m[1]) * 60 + Number(m[2])) * 60_000 : 0
  const day = Math.floor(now / 86_400_000) * 86_400_000
  return day + from > now ? day + from : day + 86_400_000 + from
}

/**
 * The first instant after `input.now` at which planning again would find something due that is not due
 * now: a hotfix's TTL ends, an instance passes its recycle age (its share of the jitter included) or its
 * window opens, a crash-looping service's backoff ends. A reconciler sleeps until then instead of
 * polling; undefined when nothing is scheduled.
 */
export function nextDeadline(input: PlanInput, p: Pick<Plan, 'waiting'>): number | undefined {
  const { now } = input
  let next = Number.POSITIVE_INFINITY
  const consider = (t: number) => {
    if (t > now && t < next) next = t
  }
  for (const h of input.hotfixes ?? []) consider(Date.parse(h.expiresAt))
  for (const svc of input.services) {
    const r = svc.recycle
    if (r?.maxAge === undefined) continue
    for (const v of input.instances) {
      if (v.service !== svc.service || !v.known || v.state !== 'running' || v.createdAt === undefined)
        continue
      // due once its age is above the limit (dueForRecycle compares with >)
      const due = Date.parse(v.createdAt) + r.maxAge + r.jitter * jitterFraction(v.id) + 1
      if (due > now) consider(due)
      else if (r.window !== undefined && !inWindow(r.window, now)) consider(nextWindowOpen(r.window, now))
    }
  }
  for (const w of p.waiting) consider(Date.parse(w.nextAttemptAt))
  return Number.isFinite(next) ? next : undefined
}
