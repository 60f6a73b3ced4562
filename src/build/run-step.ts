import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { basename, join, posix } from 'node:path'
import { GrailError, isErrno } from '../errors.js'
import type { Step } from '../spec/types.js'
import { checkResources } from '../util/cgroups.js'
import { runCommand } from '../util/exec.js'
import { DEFAULT_PATH_ENV } from './env.js'
import type { BuildEnv, ImageState, LayerDesc } from './env.js'
import { mergeEnv } from './config-steps.js'
import { layerFromDir } from './layers.js'
import {
  overlayMountCommand,
  runcDeleteCommand,
  runcRunCommand,
  runtimeConfig,
  umountCommand,
} from './sandbox.js'
import { emptySnapshot, ensureLowers, lookupInLowers } from './snapshots.js'
import { NORMAL_VARIATION, STEP_UMASK, inTimeNamespace, variedEnv } from './variation.js'

export type RunStep = Extract<Step, { kind: 'run' }>

/** Paths that exist only as mount points of the sandbox; what the step leaves under them is not content. */
const MOUNT_POINTS = ['proc', 'sys', 'dev']

async function readIdDb(rootfs: string, file: 'passwd' | 'group'): Promise<string[][]> {
  try {
    return (await readFile(join(rootfs, 'etc', file), 'utf8')).split('\n').map((l) => l.split(':'))
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  }
}

/** The row of /etc/passwd or /etc/group for a name, or a user error naming the file and the fix. */
async function lookupName(rootfs: string, file: 'passwd' | 'group', name: string): Promise<string[]> {
  const row = (await readIdDb(rootfs, file)).find((r) => r[0] === name)
  if (!row) {
    const what = file === 'passwd' ? 'user' : 'group'
    throw new GrailError(
      file === 'passwd' ? 'UNKNOWN_USER' : 'UNKNOWN_GROUP',
      `${what} "${name}" does not exist in the image's /etc/${file}`,
      {
        hint: `create the ${what} in an earlier run step, or use a numeric id`,
      },
    )
  }
  return row
}

/**
 * Resolves `user` (name or uid, optional :group) against the image's own passwd and group files. As in
 * Docker, a numeric uid with no group takes its primary group from /etc/passwd when listed there, else 0.
 */
export async function resolveUser(
  rootfs: string,
  user: string | undefined,
): Promise<{ uid: number; gid: number }> {
  if (!user) return { uid: 0, gid: 0 }
  const [u = '', g] = user.split(':')
  const passwd = /^\d+$/.test(u)
    ? (await readIdDb(rootfs, 'passwd')).find((r) => r[2] === u)
    : await lookupName(rootfs, 'passwd', u)
  const uid = /^\d+$/.test(u) ? Number(u) : Number(passwd?.[2])
  let gid = passwd ? Number(passwd[3]) : 0
  if (g !== undefined) gid = /^\d+$/.test(g) ? Number(g) : Number((await lookupName(rootfs, 'group', g))[2])
  return { uid, gid }
}

/**
 * Runs one `run` step in a runc sandbox over an overlay of the image so far, and turns the overlay's
 * upper dir (exactly what the command changed) into the step's layer.
 */
export async function runStepLayer(env: BuildEnv, state: ImageState, step: RunStep): Promise<LayerDesc> {
  if (env.resources) await checkResources(env.resources, `run step ${JSON.stringify(step.argv)}`)
  const lowers = await ensureLowers(env.home, env.store, state.layers)
  if (lowers.length === 0) lowers.push(await emptySnapshot(env.home))
  if (/[:,]/.test(env.home.snapshots) || /[:,]/.test(env.home.tmp)) {
    throw new GrailError('BAD_HOME_PATH', `Grail's state directory ${env.home.root} contains ':' or ','`, {
      hint: 'overlayfs cannot take such paths; set GRAIL_HOME to a directory without them',
    })
  }
  const vary = env.variation ?? NORMAL_VARIATION
  const work = env.store.tmpPath(vary.workLabel)
  const dirs = {
    upper: join(work, 'upper'),
    work: join(work, 'work'),
    rootfs: join(work, 'rootfs'),
    bundle: work,
  }
  await Promise.all([
    mkdir(dirs.upper, { recursive: true }),
    mkdir(dirs.work, { recursive: true }),
    mkdir(dirs.rootfs, { recursive: true }),
  ])
  const id = `grail-b-${process.pid}-${randomBytes(4).toString('hex')}`
  let mounted = false
  let started = false
  try {
    // lower dirs by name relative to the snapshots dir keep the mount options short (one page at most)
    const mount = overlayMountCommand({
      lowers: lowers.map((l) => basename(l)),
      upper: dirs.upper,
      work: dirs.work,
      target: dirs.rootfs,
    })
    await runCommand({ ...mount, cwd: env.home.snapshots })
    mounted = true
    const cfg = state.config.config
    const { uid, gid } = await resolveUser(dirs.rootfs, cfg.User)
    let procEnv = mergeEnv(cfg.Env ?? [], step.env)
    if (!procEnv.some((e) => e.startsWith('PATH='))) procEnv = [DEFAULT_PATH_ENV, ...procEnv]
    // tools that stamp their output take the time from here (reproducible-builds.org), the clamp of the layers
    if (!procEnv.some((e) => e.startsWith('SOURCE_DATE_EPOCH=')))
      procEnv = [...procEnv, `SOURCE_DATE_EPOCH=${env.epoch}`]
    const cwd = cfg.WorkingDir || '/'
    const config = runtimeConfig(
      dirs.rootfs,
      {
        argv: step.argv,
        env: variedEnv(procEnv, vary),
        // the same directory, reached by another path: $PWD and getcwd() differ, the files written do not
        cwd: vary.rootAlias ? posix.join(vary.rootAlias, cwd) : cwd,
        uid,
        gid,
        network: step.network,
        hostname: vary.hostname,
        umask: STEP_UMASK,
      },
      {
        ...(env.resources ? { resources: env.resources } : {}),
        ...(vary.rootAlias ? { rootAlias: vary.rootAlias } : {}),
      },
    )
    await writeFile(join(dirs.bundle, 'config.json'), JSON.stringify(config))
    await mkdir(env.home.runcRoot, { recursive: true })
    started = true
    const result = await runCommand(
      inTimeNamespace(
        runcRunCommand({ runcRoot: env.home.runcRoot, bundle: dirs.bundle, id }),
        vary.clockOffset,
      ),
      {
        allowFailure: true,
        onOutput: (chunk) => {
          for (const line of chunk.toString('utf8').split('\n')) if (line.length) env.log(line)
        },
      },
    )
    if (result.code !== 0) {
      const tail = `${result.stdout}${result.stderr}`.trim().split('\n').slice(-10)
      throw new GrailError(
        'RUN_FAILED',
        `run step ${JSON.stringify(step.argv)} exited with ${result.signal ?? result.code}`,
        {
          hint: 'fix the command; its last output lines are shown above',
          details: tail,
        },
      )
    }
  } finally {
    if (started)
      await runCommand(runcDeleteCommand({ runcRoot: env.home.runcRoot, id }), { allowFailure: true })
    if (mounted) await runCommand(umountCommand(dirs.rootfs))
  }
  try {
    const created = new Set<string>()
    for (const p of step.network ? [...MOUNT_POINTS, 'etc/resolv.conf'] : MOUNT_POINTS)
      if (!(await lookupInLowers(lowers, p))) created.add(p)
    return await layerFromDir(env, dirs.upper, {
      overlayUpper: true,
      exclude: (p) => created.has(p) || MOUNT_POINTS.some((m) => p.startsWith(`${m}/`)),
    })
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
