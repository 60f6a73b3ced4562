import { createHash } from 'node:crypto'
import { formatDuration } from '../spec/duration.js'
import type { RecycleSpec } from '../spec/types.js'

export interface RecycleCandidate {
  id: string
  createdAt: string
  /** drift findings of the instance (for order: most-drifted) */
  drift: number
}

/** A stable fraction in [0, 1) per instance id: its share of the jitter, the same on every plan. */
export function jitterFraction(id: string): number {
  return createHash('sha256').update(id).digest().readUInt32BE(0) / 0x1_0000_0000
}

/** Minutes since midnight UTC of `now`. */
const minuteOfDay = (now: number): number => Math.floor((now % 86_400_000) / 60_000)

/** True when `now` falls inside a daily UTC window "HH:MM-HH:MM" (which may wrap midnight). */
export function inWindow(window: string | undefined, now: number): boolean {
  if (window === undefined) return true
  const m = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(window)
  if (!m) return false
  const from = Number(m[1]) * 60 + Number(m[2])
  const to = Number(m[3]) * 60 + Number(m[4])
  const t = minuteOfDay(now)
  return from <= to ? t >= from && t < to : t >= from || t < to
}

/**
 * The instances due for routine replacement, in the order they should go: older than `maxAge` plus their
 * share of `jitter`, inside the window, oldest first (or most drifted first, then oldest). Each comes with
 * the reason a plan shows ("age 8d > maxAge 7d").
 */
export function dueForRecycle(
  spec: RecycleSpec,
  instances: readonly RecycleCandidate[],
  now: number,
): Array<{ id: string; reason: string }> {
  if (spec.maxAge === undefined || !inWindow(spec.window, now)) return []
  const maxAge = spec.maxAge
  const due = instances
    .map((i) => ({
      ...i,
      age: now - Date.parse(i.createdAt),
      limit: maxAge + spec.jitter * jitterFraction(i.id),
    }))
    .filter((i) => i.age > i.limit)
  due.sort((a, b) =>
    spec.order === 'most-drifted' && a.drift !== b.drift
      ? b.drift - a.drift
      : b.age - a.age || (a.id < b.id ? -1 : 1),
  )
  return due.map((i) => ({
    id: i.id,
    reason: `age ${formatDuration(roundAge(i.age))} > maxAge ${formatDuration(maxAge)}${spec.jitter > 0 ? ` (+${formatDuration(Math.round(i.limit - maxAge))} jitter)` : ''}`,
  }))
}

/** Ages shown to a useful precision: whole seconds under an hour, whole minutes under a day, else hours. */
function roundAge(ms: number): number {
  const unit = ms < 3_600_000 ? 1000 : ms < 86_400_000 ? 60_000 : 3_600_000
  return Math.floor(ms / unit) * unit
}
