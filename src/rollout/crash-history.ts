import type { RestartView } from '../plan/index.js'
import type { RuntimeProvider } from '../runtime/types.js'
import type { Project } from '../spec/types.js'
import type { Db } from '../state/index.js'
import { listRestarts } from '../state/index.js'

/** How many log lines of a crashed or unhealthy instance plan and status show. */
export const LOG_TAIL_LINES = 10

/** The last lines of each instance's log, read from the provider (those it no longer has are left out). */
export async function logTailsOf(
  a: { provider: RuntimeProvider },
  instances: ReadonlyArray<{ id: string }>,
): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {}
  await Promise.all(
    instances.map(async ({ id }) => {
      const text = await a.provider.logs({ id, provider: a.provider.name }, { tailLines: LOG_TAIL_LINES })
      out[id] = text.split('\n').filter((l) => l !== '')
    }),
  )
  return out
}

/** Involuntary restarts of the environment's services within their crash-loop windows, per service. */
export function restartHistory(
  a: { db: Db; environment: string; project: Project },
  now: number,
): Record<string, RestartView[]> {
  const services = Object.values(a.project.environments[a.environment]?.services ?? {})
  const window = Math.max(0, ...services.map((s) => s.crashLoop.window))
  const out: Record<string, RestartView[]> = {}
  for (const r of listRestarts(a.db, a.environment, new Date(now - window).toISOString()))
    out[r.service] = [...(out[r.service] ?? []), { release: r.release, at: Date.parse(r.at) }]
  return out
}
