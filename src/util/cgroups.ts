import { readFile } from 'node:fs/promises'
import { GrailError } from '../errors.js'
import type { Resources } from '../spec/types.js'

/** The cgroup controller each limit needs. */
const CONTROLLER: Record<keyof Resources, string> = { memory: 'memory', cpus: 'cpu', pids: 'pids' }

/** Controllers the kernel has enabled, from /proc/cgroups (cgroup v1 and v2 list them alike). */
export async function enabledControllers(): Promise<Set<string>> {
  const text = await readFile('/proc/cgroups', 'utf8')
  const out = new Set<string>()
  for (const line of text.split('\n')) {
    const [name, , , enabled] = line.split('\t')
    if (name && !name.startsWith('#') && enabled === '1') out.add(name)
  }
  return out
}

/**
 * Refuses limits this kernel cannot enforce, naming them, before a container is made: runc would
 * otherwise fail with an opaque cgroup error, or (worse) a limit would silently not hold.
 */
export async function checkResources(r: Resources, where: string): Promise<void> {
  const wanted = (Object.keys(CONTROLLER) as Array<keyof Resources>).filter((k) => r[k] !== undefined)
  if (wanted.length === 0) return
  const enabled = await enabledControllers()
  const missing = wanted.filter((k) => !enabled.has(CONTROLLER[k]))
  if (missing.length === 0) return
  throw new GrailError(
    'RESOURCE_UNSUPPORTED',
    `${where}: this kernel cannot enforce resources.${missing.join(', resources.')} (cgroup controller ${missing.map((k) => CONTROLLER[k]).join(', ')} not enabled)`,
    { hint: 'remove the limit, or enable the controller (cgroup_enable=… on the kernel command line)' },
  )
}
