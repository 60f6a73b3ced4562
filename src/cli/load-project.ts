import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { isErrno } from '../errors.js'
import { resolveHome } from '../home.js'
import { sha256Hex } from '../oci/digest.js'
import type { Project } from '../spec/types.js'
import { makePrivateDir, PRIVATE_FILE_MODE } from '../util/private-fs.js'
import { writeAtomic } from '../util/write-atomic.js'
import { SPEC_FILES } from './project.js'
import { grailVersion } from './version.js'

/** Bump when the normalised Project shape changes, so an old cache is never read as a new shape. */
const CACHE_FORMAT = 2

/** The YAML spec file `target` means, when it is unambiguous; undefined sends the caller to the loader. */
function yamlSpecFile(target: string): string | undefined {
  if (/\.ya?ml$/.test(target)) return target
  const present = SPEC_FILES.filter((f) => existsSync(join(target, f)))
  return present.length === 1 && /\.ya?ml$/.test(present[0] as string)
    ? join(target, present[0] as string)
    : undefined
}

/**
 * Loads the project, reusing the normalised result of the last successful load when the YAML file's
 * bytes, its path, SOURCE_DATE_EPOCH and the Grail version are all unchanged. Validating the schema costs
 * more than everything else a no-op `grail build` does (about 80 ms of 290 ms measured), and an unchanged
 * file that was valid is still valid. TypeScript configs import other files and are always loaded.
 */
export async function loadProjectCached(target: string): Promise<Project> {
  const file = yamlSpecFile(target)
  const load = async () => (await import('../spec/index.js')).loadProject(target)
  if (!file) return load()
  let bytes: Buffer
  try {
    bytes = readFileSync(file)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return load()
    throw err
  }
  const key = sha256Hex(
    JSON.stringify([
      CACHE_FORMAT,
      grailVersion(),
      file,
      process.env.SOURCE_DATE_EPOCH ?? '',
      sha256Hex(bytes),
    ]),
  )
  const cacheFile = join(resolveHome(dirname(file)).root, 'spec-cache.json')
  try {
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as { key: string; project: Project }
    if (cached.key === key) return cached.project
  } catch (err) {
    if (!isErrno(err, 'ENOENT') && !(err instanceof SyntaxError)) throw err
  }
  const project = await load()
  await makePrivateDir(dirname(cacheFile))
  // the normalised spec holds every env value and deploy file: owner-only
  await writeAtomic(cacheFile, JSON.stringify({ key, project }), { mode: PRIVATE_FILE_MODE })
  return project
}
