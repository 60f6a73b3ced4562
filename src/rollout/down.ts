import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { appendEvent, liveInstances } from '../state/index.js'
import type { ApplyEnv } from './apply.js'
import { removeInstance } from './instances.js'
import { type ProxyReport, stopEnvironmentProxies } from './proxies.js'

/**
 * `grail down`: every instance of the environment (known to state or only found by the provider) is
 * stopped and destroyed, and every proxy of the environment found on disk stopped, whatever the spec says
 * now. Volumes stay unless asked for, since they are the state.
 */
export async function downEnvironment(
  a: ApplyEnv,
  opts: { volumes: boolean },
): Promise<{ environment: string; instances: string[]; volumes: boolean; proxies: ProxyReport[] }> {
  const ids = new Set(liveInstances(a.db, a.environment).map((r) => r.id))
  for (const o of await a.provider.list({ project: a.project.name, environment: a.environment }))
    ids.add(o.id)
  for (const id of ids) {
    await removeInstance(a.db, a.provider, id, { reason: 'grail down', graceMs: 2000 })
  }
  const proxies = await stopEnvironmentProxies(a.home, a.environment, Object.keys(a.project.environments))
  if (opts.volumes)
    await rm(join(a.home.volumes, a.project.name, a.environment), { recursive: true, force: true })
  appendEvent(a.db, 'environment.down', a.environment, { instances: [...ids], volumes: opts.volumes })
  return { environment: a.environment, instances: [...ids], volumes: opts.volumes, proxies }
}
