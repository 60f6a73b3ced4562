/**
 * The answers of the API the dashboard reads are the engine's own types (the CLI's `--json` shapes):
 * this file names them for the pages and derives the few views a page needs from them.
 */
import type { OutdatedReport } from '../../src/lifecycle/outdated.js'

export type { EnvironmentSummary, HotfixSummary, ServiceSummary } from '../../src/engine/fleet.js'
export type { OutdatedReport } from '../../src/lifecycle/outdated.js'

/** One package of an image version with a newer version in the archive. */
export interface OutdatedRow {
  /** `web v3` */
  image: string
  package: string
  locked: string
  available: string
  suite: string
  security: boolean
}

/** The package updates of `grail outdated --json`, one row per image version and package. */
export function outdatedRows(report: OutdatedReport): OutdatedRow[] {
  return report.images.flatMap((i) =>
    i.updates.map((u) => ({
      image: `${i.image} v${i.version}`,
      package: u.package,
      locked: u.locked,
      available: u.available,
      suite: u.suite,
      security: u.security,
    })),
  )
}

/** A hotfix's TTL still runs at `now` (the API's `live` is as of the fetch; the page counts on). */
export function stillLive(h: { live: boolean; expiresAt: string }, now: number): boolean {
  return h.live && Date.parse(h.expiresAt) > now
}
