import { readdir, rm, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { BaseSource } from '../spec/types.js'
import type { Command } from '../util/exec.js'
import { runCommand } from '../util/exec.js'
import type { BuildEnv, ImageState } from './env.js'
import { DEFAULT_PATH_ENV, emptyConfig, hostArchitecture } from './env.js'
import { layerFromDir } from './layers.js'
import { readPackages } from './packages.js'

type DebianBase = Extract<BaseSource, { kind: 'debian' }>

/**
 * The mmdebstrap invocation for a Debian base. SOURCE_DATE_EPOCH makes mmdebstrap's own output
 * reproducible; Grail then normalises the tree into a layer (sorted, clamped, no device nodes).
 */
export function mmdebstrapCommand(base: DebianBase, target: string, epoch: number): Command {
  const args = [
    '--mode=root',
    `--variant=${base.variant}`,
    `--architectures=${base.architecture ?? hostArchitecture()}`,
    `--components=${base.components.join(',')}`,
  ]
  if (base.include.length > 0) args.push(`--include=${base.include.join(',')}`)
  args.push(base.suite, target)
  if (base.mirror) args.push(base.mirror)
  return {
    file: 'mmdebstrap',
    args,
    env: { ...stripEnv(process.env), SOURCE_DATE_EPOCH: String(epoch), LC_ALL: 'C.UTF-8' },
  }
}

function stripEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v
  return out
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
  const work = env.store.tmpPath('debian')
  const rootfs = join(work, 'rootfs')
  await mkdir(work, { recursive: true })
  try {
    env.log(
      `mmdebstrap ${base.suite} (${base.variant}${base.include.length ? `, +${base.include.join(',')}` : ''})`,
    )
    await runCommand(mmdebstrapCommand(base, rootfs, env.epoch), {
      onOutput: (chunk) => {
        for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) env.log(line)
      },
    })
    // device nodes and /dev symlinks are the runtime's business, not the image's
    for (const name of await readdir(join(rootfs, 'dev')))
      await rm(join(rootfs, 'dev', name), { recursive: true })
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
