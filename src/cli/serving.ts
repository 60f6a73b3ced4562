import type { Serving } from '../engine/status.js'

/**
 * What is true after `release` of a service failed its gate: the release before it still serves (named,
 * with its URL), or nothing serves the service yet. Never claims a previous release that is not there.
 */
export function afterFailedGate(
  serving: readonly Serving[],
  f: { service: string; release: number; reason: string | undefined },
): string {
  const s = serving.find((x) => x.service === f.service)
  if (s?.release === undefined || s.release === f.release)
    return `${f.service} release ${f.release} failed its health gate: ${f.reason}; nothing serves ${f.service} yet`
  return `${f.service} release ${f.release} rolled back: ${f.reason}; release ${s.release} is still serving${s.url ? ` at ${s.url}` : ''}`
}
