import { readdir } from 'node:fs/promises'
import { isErrno } from '../../errors.js'
import type { GrailHome } from '../../home.js'
import { isInstanceId } from './layout.js'
import { destroyInstance, reconcileLocal, stopInstance } from './lifecycle.js'
import { listContainers } from './runc.js'

/**
 * Stops and destroys every instance of a home, whatever state says of it: each bundle dir and each
 * runc container with an instance's id (build sandboxes are left to the build's own cleaner). For
 * starting a project over when its state is lost; volumes stay. Returns the ids it removed.
 */
export async function destroyAllLocal(home: GrailHome, graceMs: number): Promise<string[]> {
  let names: string[] = []
  try {
    names = await readdir(home.instances)
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
  const ids = new Set(names.filter(isInstanceId))
  for (const id of (await listContainers(home.runcRoot)).keys()) if (isInstanceId(id)) ids.add(id)
  const sorted = [...ids].sort()
  await Promise.all(sorted.map((id) => stopInstance(home, id, graceMs)))
  for (const id of sorted) await destroyInstance(home, id)
  await reconcileLocal(home)
  return sorted
}
