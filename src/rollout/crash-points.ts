/**
 * Named points of a rollout where a test may kill the process (SIGKILL, no cleanup), to prove that the
 * next apply finishes or undoes whatever was half done. Set GRAIL_CRASH_AT to a point's name; unset, this
 * is one comparison per point.
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

export function crashPoint(name: CrashPoint): void {
  if (process.env.GRAIL_CRASH_AT === name) process.kill(process.pid, 'SIGKILL')
}
