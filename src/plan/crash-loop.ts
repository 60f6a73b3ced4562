import { formatDuration } from '../spec/duration.js'
import type { CrashLoopSpec } from '../spec/types.js'

/** One involuntary restart of a service, as the planner sees it. */
export interface RestartView {
  release: number
  /** epoch milliseconds */
  at: number
}

/** A service in a crash loop: how many restarts, over what span, and when apply may try again. */
export interface CrashLoop {
  restarts: number
  /** from the first counted restart to the last */
  spanMs: number
  backoffMs: number
  /** epoch milliseconds of the next attempt */
  nextAttemptAt: number
  /** the backoff has not run out: apply leaves the service alone */
  waiting: boolean
  /** `crash loop: 3 restarts in 41s, next attempt in 30s` */
  summary: string
}

/** Whole seconds, rounded up, so a message never says "next attempt in 0s" while it is still ahead. */
const seconds = (ms: number): string => formatDuration(Math.max(1, Math.ceil(ms / 1000)) * 1000)

/**
 * Whether a release of a service is crash-looping at `now`: `spec.restarts` or more restarts of that
 * release within `spec.window`. Once it is, each further restart doubles the wait after the last one
 * (`backoff`, `2 × backoff`, … up to `maxBackoff`), so a release that keeps dying is retried ever less
 * often instead of forever. Only restarts of this release count: a new release starts with a clean slate.
 */
export function crashLoopOf(
  spec: CrashLoopSpec,
  restarts: readonly RestartView[],
  release: number,
  now: number,
): CrashLoop | null {
  const recent = restarts
    .filter((r) => r.release === release && r.at > now - spec.window && r.at <= now)
    .sort((a, b) => a.at - b.at)
  if (recent.length < spec.restarts) return null
  const first = (recent[0] as RestartView).at
  const last = (recent.at(-1) as RestartView).at
  // 2^20 × any sane backoff is past every cap; the bound only keeps the arithmetic finite
  const doublings = Math.min(recent.length - spec.restarts, 20)
  const backoffMs = Math.min(spec.maxBackoff, spec.backoff * 2 ** doublings)
  const nextAttemptAt = last + backoffMs
  const waiting = now < nextAttemptAt
  const head = `crash loop: ${recent.length} restarts in ${seconds(last - first)}`
  return {
    restarts: recent.length,
    spanMs: last - first,
    backoffMs,
    nextAttemptAt,
    waiting,
    summary: waiting
      ? `${head}, next attempt in ${seconds(nextAttemptAt - now)}`
      : `${head}, retrying after a ${seconds(backoffMs)} backoff`,
  }
}
