import type { Project } from '../spec/types.js'
import type { ReleaseRecord } from '../state/index.js'

/** What serves a service in an environment after a rollout: its active release, if any, and its URL. */
export interface Serving {
  service: string
  /** the active release; undefined when no release of the service has ever passed its gate here */
  release: number | undefined
  url: string | undefined
}

/** The active release and published URL of every service of `environment`, from its `releases` now. */
export function servingNow(
  releases: readonly ReleaseRecord[],
  project: Project,
  environment: string,
): Serving[] {
  return Object.values(project.environments[environment]?.services ?? {}).map((s) => {
    const active = releases.find((r) => r.service === s.name && r.status === 'active')
    return {
      service: s.name,
      release: active?.number,
      url: s.publish ? `http://${s.publish.host}:${s.publish.port}/` : undefined,
    }
  })
}

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
