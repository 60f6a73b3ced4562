import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { appendEvent, liveInstances } from '../state/index.js'
import type { ApplyEnv } from './apply.js'
import { proxyDir } from './apply.js'
import { removeInstances } from './instances.js'

/**
 * `grail down`: every instance of the environment (known to state or only found by the provider) is
 * stopped and destroyed, every proxy stopped. Volumes stay unless asked for, since they are the state.
 */
export async function downEnvironment(
  a: ApplyEnv,
  opts: { volumes: boolean; services: string[] },
): Promise<{ environment: string; instances: string[]; volumes: boolean }> {
  const ids = new Set(liveInstances(a.db, a.environment).map((r) => r.id))
  for (const o of await a.provider.list({ project: a.project.name, environment: a.environment }))
    ids.add(o.id)
  await removeInstances(
    a.db,
    a.provider,
    [...ids].map((id) => ({ id, reason: 'grail down' })),
    { graceMs: 2000 },
  )
  const { stopProxy } = await import('../proxy/supervisor.js')
  for (const service of opts.services) await stopProxy(proxyDir(a.home, a.environment, service))
  if (opts.volumes)
    await rm(join(a.home.volumes, a.project.name, a.environment), { recursive: true, force: true })
  appendEvent(a.db, 'environment.down', a.environment, { instances: [...ids], volumes: opts.volumes })
  return { environment: a.environment, instances: [...ids], volumes: opts.volumes }
}
