import { chown, mkdir, readFile, readdir, rm } from 'node:fs/promises'
import { isErrno } from '../errors.js'
import { join } from 'node:path'
import type { BaseSource } from '../spec/types.js'
import type { Command } from '../util/exec.js'
import type { BuildEnv, ImageState } from './env.js'
import { DEFAULT_PATH_ENV } from '../container/process.js'
import { emptyConfig, hostArchitecture } from './env.js'
import { readPackages } from './packages.js'

type DebianBase = Extract<BaseSource, { kind: 'debian' }>

/**
 * The mmdebstrap invocation for a Debian base. SOURCE_DATE_EPOCH makes mmdebstrap's own output
 * reproducible; Grail then normalises the tree into a layer (sorted, clamped, no device nodes).
 */
export function mmdebstrapCommand(
  base: DebianBase,
  target: string,
  epoch: number,
  upgrades: Readonly<Record<string, string>> = {},
): Command {
  const include = upgradedInclude(base.include, upgrades)
  const args = [
    '--mode=root',
    `--variant=${base.variant}`,
    `--architectures=${base.architecture ?? hostArchitecture()}`,
    `--components=${base.components.join(',')}`,
  ]
  if (include.length > 0) args.push(`--include=${include.join(',')}`)
  args.push(base.suite, target)
  if (base.mirror) args.push(base.mirror)
  return { file: 'mmdebstrap', args, env: bootstrapEnv(process.env, epoch) }
}

/**
 * The `include` list with each pin (`pkg=VERSION`) of a package named in `upgrades` moved to the version
 * given there: how a `policies.patch` build installs the newer version of a pinned package without the
 * spec (or the base's cache key, which is the spec's) changing. Unpinned packages need nothing: a
 * refreshed bootstrap installs the archive's newest.
 */
export function upgradedInclude(
  include: readonly string[],
  upgrades: Readonly<Record<string, string>>,
): string[] {
  return include.map((item) => {
    const eq = item.indexOf('=')
    if (eq < 0) return item
    const to = upgrades[item.slice(0, eq)]
    return to === undefined ? item : `${item.slice(0, eq)}=${to}`
  })
}

/** Proxy settings are the only part of the caller's environment a bootstrap may see. */
const PASSED_THROUGH = ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']

/**
 * A fixed environment for mmdebstrap: whatever else the caller's shell holds (locale, TMPDIR, tool
 * paths) must not reach the root filesystem.
 */
export function bootstrapEnv(env: NodeJS.ProcessEnv, epoch: number): Record<string, string> {
  const out: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    LC_ALL: 'C.UTF-8',
    SOURCE_DATE_EPOCH: String(epoch),
  }
  for (const k of PASSED_THROUGH) {
    const v = env[k]
    if (v !== undefined) out[k] = v
  }
  return out
}

/**
 * apt's download dirs are left behind by the bootstrap owned by whichever user the host's apt chose for
 * its sandbox (root or _apt, depending on the caller's environment). They are given the owner the
 * image's own apt would use: `_apt` when the image has that user, root otherwise.
 */
async function normaliseAptDirs(rootfs: string): Promise<void> {
  let aptUid = 0
  try {
    const row = (await readFile(join(rootfs, 'etc/passwd'), 'utf8'))
      .split('\n')
      .find((l) => l.startsWith('_apt:'))
    if (row) aptUid = Number(row.split(':')[2])
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
  for (const dir of ['var/cache/apt/archives/partial', 'var/lib/apt/lists/partial']) {
    try {
      await chown(join(rootfs, dir), aptUid, 0)
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err
    }
  }
}

export function debianBaseKeyPart(base: DebianBase, epoch: number): unknown {
  return {
    kind: 'debian',
    suite: base.suite,
    variant: base.variant,
    include: base.include,
    components: base.components,
    mirror: base.mirror ?? null,
    architecture: base.architecture ?? hostArchitecture(),
    epoch,
  }
}

/** Bootstraps a Debian root filesystem and turns it into the image's first layer. */
export async function produceDebianBase(base: DebianBase, env: BuildEnv, key: string): Promise<ImageState> {
  // loaded here: a build whose base is cached (every no-op build) needs neither
  const [{ runCommand }, { layerFromDir }] = await Promise.all([
    import('../util/exec.js'),
    import('./layers.js'),
  ])
  const work = env.store.tmpPath('debian')
  const rootfs = join(work, 'rootfs')
  await mkdir(work, { recursive: true })
  try {
    const include = upgradedInclude(base.include, env.upgrades ?? {})
    env.log(`mmdebstrap ${base.suite} (${base.variant}${include.length ? `, +${include.join(',')}` : ''})`)
    await runCommand(mmdebstrapCommand(base, rootfs, env.epoch, env.upgrades), {
      onOutput: (chunk) => {
        for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) env.log(line)
      },
    })
    // device nodes and /dev symlinks are the runtime's business, not the image's
    for (const name of await readdir(join(rootfs, 'dev')))
      await rm(join(rootfs, 'dev', name), { recursive: true })
    await normaliseAptDirs(rootfs)
    const packages = await readPackages(rootfs)
    const layer = await layerFromDir(env, rootfs, {})
    const config = emptyConfig(base.architecture ?? hostArchitecture())
    config.config.Env = [DEFAULT_PATH_ENV]
    config.rootfs.diff_ids.push(layer.diffId)
    config.history?.push({ created_by: `grail: debian ${base.suite} ${base.variant}` })
    return { key, layers: [layer], config, packages, parentDigest: null }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
