import type { InstanceView } from '../plan/types.js'
import { GrailError } from '../errors.js'
import type { InstanceObservation, InstanceState, RuntimeProvider } from '../runtime/types.js'
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

/**
 * One instance state expects, as the provider reports it: `missing` when the provider has no such
 * instance, `invalid id` when it could never have one (an id an older Grail made), so that `status`
 * shows every record whatever state holds instead of failing on one.
 */
export async function inspectRecorded(
  provider: RuntimeProvider,
  id: string,
): Promise<{ state: InstanceState | 'invalid id'; pid?: number }> {
  try {
    const o = await provider.inspect({ id, provider: provider.name })
    return { state: o.state, ...(o.pid === undefined ? {} : { pid: o.pid }) }
  } catch (err) {
    if (err instanceof GrailError && err.code === 'INSTANCE_NOT_FOUND') return { state: 'missing' }
    if (err instanceof GrailError && err.code === 'BAD_INSTANCE_ID') return { state: 'invalid id' }
    throw err
  }
}
