import type { InstanceView } from '../plan/types.js'
import type { InstanceObservation, RuntimeProvider } from '../runtime/types.js'
import type { Db, InstanceRecord } from '../state/index.js'
import { liveInstances } from '../state/index.js'

/**
 * What runs in an environment, as state and the provider see it together: every instance the provider
 * reports (known or not) plus every instance state expects that the provider no longer has (missing).
 */
export async function observe(
  db: Db,
  provider: RuntimeProvider,
  scope: { project: string; environment: string },
): Promise<{ views: InstanceView[]; records: InstanceRecord[]; observed: InstanceObservation[] }> {
  const records = liveInstances(db, scope.environment)
  const byId = new Map(records.map((r) => [r.id, r]))
  const seen = new Set<string>()
  const views: InstanceView[] = []
  const observed = await provider.list(scope)
  for (const o of observed) {
    seen.add(o.id)
    const rec = byId.get(o.id)
    views.push({
      id: o.id,
      service: o.labels.service,
      release: o.labels.release,
      known: rec !== undefined,
      state: o.state === 'created' ? 'stopped' : o.state,
      health: rec?.phase === 'healthy' ? 'healthy' : 'unknown',
    })
  }
  for (const r of records) {
    if (!seen.has(r.id)) {
      views.push({
        id: r.id,
        service: r.service,
        release: r.releaseNumber,
        known: true,
        state: 'missing',
        health: 'unknown',
      })
    }
  }
  return { views, records, observed }
}
