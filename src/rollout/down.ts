import { appendEvent, clearRestarts, liveInstances } from '../state/index.js'
import { mapLimit } from '../util/pool.js'
import type { ExecEnv } from './types.js'
import { STOP_CONCURRENCY, removeInstance } from './instances.js'
import { type ProxyReport, stopEnvironmentProxies } from './proxies.js'

/** What `down` did: what it destroyed, and what it could not remove, each with why. */
export interface DownResult {
  environment: string
  instances: string[]
  volumes: boolean
  failed: Array<{ what: string; error: string }>
  proxies: ProxyReport[]
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * `grail down`: every instance of the environment (known to state or only found by the provider) is
 * stopped and destroyed, and every proxy of the environment found on disk stopped, whatever the spec says
 * now (`services` is not needed for that). Volumes stay unless asked for, since they are the state.
 * One instance that cannot be removed does not keep the others running: down removes what it can and
 * returns what failed, so the caller can say so.
 */
export async function downEnvironment(
  a: ExecEnv,
  opts: { volumes: boolean; services: string[] },
): Promise<DownResult> {
  const ids = new Set(liveInstances(a.db, a.environment).map((r) => r.id))
  for (const o of await a.provider.list({ project: a.project.name, environment: a.environment }))
    ids.add(o.id)
  const destroyed: string[] = []
  const failed: DownResult['failed'] = []
  // side by side, a bounded number at a time; one that cannot be removed does not stop the others
  await mapLimit([...ids], STOP_CONCURRENCY, async (id) => {
    try {
      await removeInstance(a.db, a.provider, id, { reason: 'grail down', graceMs: 2000 })
      destroyed.push(id)
    } catch (err) {
      failed.push({ what: `instance ${id}`, error: messageOf(err) })
    }
  })
  const proxies = await stopEnvironmentProxies(a.home, a.environment, Object.keys(a.project.environments), {
    onError: (what, err) => failed.push({ what, error: messageOf(err) }),
  })
  if (opts.volumes && failed.length === 0)
    await a.provider.removeVolumes({ project: a.project.name, environment: a.environment })
  // taken down on purpose: a crash loop of before does not hold back the next `up`
  clearRestarts(a.db, a.environment)
  const volumes = opts.volumes && failed.length === 0
  appendEvent(a.db, 'environment.down', a.environment, { instances: destroyed, volumes, failed })
  return { environment: a.environment, instances: destroyed, volumes, failed, proxies }
}
