import {
  appendEvent,
  listReleases,
  liveInstances,
  markInterruptedHotfixes,
  setReleaseStatus,
} from '../state/index.js'
import { removeInstances } from './instances.js'
import type { ExecEnv } from './types.js'

/**
 * Finishes or undoes what a killed apply left half-done: instances that never became healthy are
 * destroyed (undo), instances being drained or stopped are destroyed (finish), a pending release is
 * marked failed. Runs before planning, under the apply lock.
 */
export async function recoverInterrupted(a: ExecEnv): Promise<string[]> {
  const done: string[] = []
  const undo = new Set<string>()
  for (const r of listReleases(a.db, a.environment).filter((r) => r.status === 'pending')) {
    const healthy = liveInstances(a.db, a.environment, r.service).filter(
      (i) => i.phase === 'healthy' && i.releaseNumber === r.number,
    )
    const replicas =
      a.project.environments[a.environment]?.services[r.service]?.replicas ?? Number.POSITIVE_INFINITY
    if (healthy.length >= replicas) {
      // every new instance was up: finish the rollout; the old release's leftovers are planned away
      const previous = listReleases(a.db, a.environment, r.service).find((p) => p.status === 'active')
      if (previous) setReleaseStatus(a.db, r.service, previous.number, 'superseded')
      setReleaseStatus(a.db, r.service, r.number, 'active', 'finished after an interrupted apply')
      done.push(`release ${r.service}#${r.number} finished`)
    } else {
      // otherwise undo it as a whole: its instances go and the plan deploys it again
      setReleaseStatus(a.db, r.service, r.number, 'failed', 'interrupted: apply did not finish')
      undo.add(`${r.service}#${r.number}`)
      done.push(`release ${r.service}#${r.number} undone`)
    }
  }
  const leftovers = liveInstances(a.db, a.environment).filter(
    (rec) => rec.phase !== 'healthy' || undo.has(`${rec.service}#${rec.releaseNumber}`),
  )
  await removeInstances(
    a.db,
    a.provider,
    leftovers.map((rec) => ({ id: rec.id, reason: `interrupted while ${rec.phase}` })),
    { graceMs: 1000 },
  )
  for (const rec of leftovers) done.push(`instance ${rec.id} (${rec.phase})`)
  const hotfixes = markInterruptedHotfixes(a.db, a.environment)
  if (hotfixes > 0)
    done.push(`${hotfixes} hotfix(es) interrupted while running: their changes are not excused`)
  if (done.length) appendEvent(a.db, 'apply.recovered', a.environment, { done })
  return done
}
