import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../errors.js'

/** A proxy directory found under a root, with the owner `ensureProxy` recorded (absent for old ones). */
export interface FoundProxy {
  readonly dir: string
  readonly name: string
  readonly owner: Record<string, string> | undefined
}

/**
 * Every proxy directory under `root` (e.g. `.grail/proxy`), whatever runs in it: the proxies a project
 * started, including those of services its spec no longer names.
 */
export async function listProxies(root: string): Promise<FoundProxy[]> {
  let names: string[]
  try {
    names = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  }
  const found: FoundProxy[] = []
  for (const name of names.sort()) {
    const dir = join(root, name)
    found.push({ dir, name, owner: await readOwner(join(dir, 'owner.json')) })
  }
  return found
}

async function readOwner(file: string): Promise<Record<string, string> | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined
    throw err
  }
  try {
    const parsed = JSON.parse(text) as unknown
    if (typeof parsed !== 'object' || parsed === null) return undefined
    return Object.fromEntries(
      Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'),
    )
  } catch {
    // a torn or edited owner file: the directory name still says whose proxy it is
    return undefined
  }
}
