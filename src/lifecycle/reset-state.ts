import { existsSync } from 'node:fs'
import { readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../errors.js'
import type { GrailHome } from '../home.js'
import { openStore } from '../oci/store.js'
import { homeProviders } from '../runtime/factory.js'
import { appendEvent, openDb, stateLeftovers } from '../state/index.js'

export interface ResetResult {
  /** what the home held that the lost state explained */
  found: string[]
  /** instances stopped and destroyed */
  instances: string[]
  /** proxies stopped, by directory name */
  proxies: string[]
  /** where the previous state database was kept, if there was one with content */
  keptAs?: string
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined
    throw err
  }
}

/**
 * `grail state reset`: starts a project over on an empty state, safely. Whatever the old state ran is
 * stopped first (every proxy and every instance of the home, found on disk and in runc, not in the
 * state that is lost), so nothing keeps running that no state knows of. The old database (and its WAL)
 * is kept beside the new one under a dated name, never deleted; images and volumes stay. The new state
 * starts with an event saying what was found and done.
 */
export async function resetState(home: GrailHome): Promise<ResetResult> {
  const found = stateLeftovers(home.db)
  const proxyRoot = join(home.root, 'proxy')
  let proxies: string[] = []
  try {
    proxies = (await readdir(proxyRoot)).filter((n) => !n.startsWith('.')).sort()
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
  const { stopProxy } = await import('../proxy/supervisor.js')
  for (const p of proxies) await stopProxy(join(proxyRoot, p), { graceMs: 2000 })
  const dataPlane = join(home.root, 'dataplane')
  const routes: string[] = []
  if (existsSync(dataPlane)) {
    const { listRoutes, stopDataPlane } = await import('../proxy/haproxy/index.js')
    for (const r of await listRoutes(dataPlane)) routes.push(`${r.environment}-${r.service}`)
    await stopDataPlane(dataPlane, { graceMs: 2000 })
  }
  const instances: string[] = []
  for (const provider of await homeProviders({ home, store: await openStore(home.oci, home.tmp) }))
    instances.push(...(await provider.destroyAll({ graceMs: 2000 })))

  let keptAs: string | undefined
  // a 0-byte database can still have its pages in the WAL: keep whatever holds a byte
  const size = ((await sizeOf(home.db)) ?? 0) + ((await sizeOf(`${home.db}-wal`)) ?? 0)
  if (size > 0) {
    keptAs = `${home.db}.reset-${new Date().toISOString().replace(/[:.]/g, '-')}`
    for (const suffix of ['-wal', '-shm', '']) {
      try {
        await rename(`${home.db}${suffix}`, `${keptAs}${suffix}`)
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err
      }
    }
  } else {
    for (const suffix of ['', '-wal', '-shm']) await rm(`${home.db}${suffix}`, { force: true })
  }
  const db = openDb(home.db, { startOver: true })
  try {
    appendEvent(db, 'state.reset', 'state', {
      found,
      instances,
      proxies: [...proxies, ...routes],
      ...(keptAs ? { keptAs } : {}),
    })
  } finally {
    db.close()
  }
  return { found, instances, proxies: [...proxies, ...routes], ...(keptAs ? { keptAs } : {}) }
}
