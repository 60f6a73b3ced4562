/**
 * Named points of a rollout (and of gc, below) where a test may kill the process (SIGKILL, no cleanup),
 * to prove that the next run finishes or undoes whatever was half done. Set GRAIL_CRASH_AT to a point's
 * name; unset, this is one comparison per point. In util/ since both rollout/ and lifecycle/ pass them.
 */
export const CRASH_POINTS = [
  'release-recorded',
  'instance-recorded',
  'instance-created',
  'instance-started',
  'instance-healthy',
  'traffic-switched',
  'old-stopping',
] as const

export type CrashPoint = (typeof CRASH_POINTS)[number]

/**
 * Points of `grail gc`, in the order it passes them: after the catalog tombstones, after index.json was
 * rewritten, and after the first manifest, config, layer blob and snapshot of each deletion phase went.
 */
export const GC_CRASH_POINTS = [
  'gc-collected',
  'gc-index-written',
  'gc-manifest-deleted',
  'gc-config-deleted',
  'gc-layer-deleted',
  'gc-snapshot-deleted',
] as const

export type GcCrashPoint = (typeof GC_CRASH_POINTS)[number]

export function crashPoint(name: CrashPoint | GcCrashPoint): void {
  if (process.env.GRAIL_CRASH_AT === name) process.kill(process.pid, 'SIGKILL')
}
