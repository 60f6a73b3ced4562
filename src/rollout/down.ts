import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { appendEvent, liveInstances } from '../state/index.js'
import { mapLimit } from '../util/pool.js'
import type { ApplyEnv } from './apply.js'
import { proxyDir } from './apply.js'
import { STOP_CONCURRENCY, removeInstance } from './instances.js'

/** What `down` did: what it destroyed, and what it could not remove, each with why. */
export interface DownResult {
  environment: string
  instances: string[]
  volumes: boolean
  failed: Array<{ what: string; error: string }>
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * `grail down`: every instance of the environment (known to state or only found by the provider) is
 * stopped and destroyed, every proxy stopped. Volumes stay unless asked for, since they are the state.
 * One instance that cannot be removed does not keep the others running: down removes what it can and
 * returns what failed, so the caller can say so.
 */
export async function downEnvironment(
  a: ApplyEnv,
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
  const { stopProxy } = await import('../proxy/supervisor.js')
  for (const service of opts.services) {
    try {
      await stopProxy(proxyDir(a.home, a.environment, service))
    } catch (err) {
      failed.push({ what: `proxy of ${service}`, error: messageOf(err) })
    }
  }
  if (opts.volumes && failed.length === 0)
    await rm(join(a.home.volumes, a.project.name, a.environment), { recursive: true, force: true })
  const volumes = opts.volumes && failed.length === 0
  appendEvent(a.db, 'environment.down', a.environment, { instances: destroyed, volumes, failed })
  return { environment: a.environment, instances: destroyed, volumes, failed }
}
