import { mkdir } from 'node:fs/promises'
import type { GrailHome } from '../home.js'
import { openStore } from '../oci/store.js'
import type { Project } from '../spec/types.js'
import type { ImageRecord } from '../state/index.js'
import { openDb, releaseLock, waitForLock } from '../state/index.js'
import { GrailError } from '../errors.js'
import type { runCommand } from '../util/exec.js'
import type { BuildEvent, BuiltImage } from './builder.js'
import { DEFAULT_EPOCH, buildImage, buildOrder } from './builder.js'
import type { BuildEnv } from './env.js'
import type { LockedBase } from '../lifecycle/lock-file.js'
import type { RegistryBases } from './registry-base.js'
import type { RemoteCache } from './remote-cache.js'
import { cleanStaleWork } from './stale.js'
import type { VerifyReport } from './verify.js'

export interface BuildRequest {
  project: Project
  home: GrailHome
  /** image names; all images when empty */
  images?: string[]
  /** build each image a second time from nothing and compare file by file */
  verify?: boolean
  /** run every step again (re-resolve Debian packages) and record what changed */
  refresh?: boolean
  /** with `refresh`: pinned Debian packages to install at a newer version (see BuildEnv.upgrades) */
  upgrades?: Readonly<Record<string, string>>
  onEvent?: (e: BuildEvent) => void
  /** a shared cache asked for the steps and bases the local cache misses (`--cache-from`) */
  remoteCache?: RemoteCache
}

export interface BuildOutcome {
  /** with, for a `base: {registry}`, the manifest it was built on: grail.lock pins it */
  images: Array<BuiltImage & { registryBase?: LockedBase }>
  verify: VerifyReport[]
}

/** The commit of the spec's repository, with `-dirty` when the work tree has changes; null outside git. */
async function gitCommit(dir: string): Promise<string | null> {
  const { runCommand } = await import('../util/exec.js')
  let head: Awaited<ReturnType<typeof runCommand>>
  try {
    head = await runCommand({ file: 'git', args: ['-C', dir, 'rev-parse', 'HEAD'] }, { allowFailure: true })
  } catch (err) {
    // without git there is no commit to record; any other failure is real
    if (err instanceof GrailError && err.code === 'TOOL_MISSING') return null
    throw err
  }
  if (head.code !== 0) return null
  const status = await runCommand(
    { file: 'git', args: ['-C', dir, 'status', '--porcelain'] },
    { allowFailure: true },
  )
  return `${head.stdout.toString().trim()}${status.stdout.length > 0 ? '-dirty' : ''}`
}

/**
 * `grail build`: builds the requested images (and the project images they are based on) in dependency
 * order, then, with `verify`, rebuilds each from nothing and names every file that differs.
 */
export async function runBuild(req: BuildRequest): Promise<BuildOutcome> {
  const order = buildOrder(req.project, req.images)
  await mkdir(req.home.root, { recursive: true })
  const db = openDb(req.home.db)
  let registry: RegistryBases | undefined
  try {
    const store = await openStore(req.home.oci, req.home.tmp)
    await cleanStaleWork(req.home)
    const images: BuildOutcome['images'] = []
    const verify: VerifyReport[] = []
    // only a spec with a registry base reads grail.lock here (a plain build's no-op path does not)
    if (order.some((i) => i.base.kind === 'registry')) {
      const [{ registryBases }, { readLock }] = await Promise.all([
        import('./registry-base.js'),
        import('../lifecycle/lock.js'),
      ])
      registry = registryBases({
        project: req.project,
        lock: await readLock(req.project),
        refresh: req.refresh === true,
      })
    }
    const current = new Map<string, ImageRecord>()
    for (const image of order) {
      const env: BuildEnv = {
        ...(registry ? { registry } : {}),
        home: req.home,
        store,
        db,
        epoch: image.sourceDateEpoch ?? DEFAULT_EPOCH,
        noCache: false,
        refresh: req.refresh === true,
        ...(req.upgrades ? { upgrades: req.upgrades } : {}),
        log: () => {},
        current,
        ...(req.remoteCache ? { remoteCache: req.remoteCache } : {}),
        project: req.project.name,
      }
      // one build of an image at a time per project: a second one waits, then finds the first's version
      const lock = `build ${image.name}`
      await waitForLock(db, lock, {
        onWait: (held) => req.onEvent?.({ type: 'waiting', image: image.name, held }),
      })
      let built: BuiltImage
      try {
        built = await buildImage(env, image, {
          onEvent: req.onEvent,
          gitCommit: () => gitCommit(req.project.dir),
        })
      } finally {
        releaseLock(db, lock)
      }
      current.set(image.name, built.record)
      const pin = registry?.pinOf(image.name)
      images.push(pin ? { ...built, registryBase: pin } : built)
      if (req.verify) {
        const [{ VERIFY_VARIATION, nextSecond }, { compareImages }] = await Promise.all([
          import('./variation.js'),
          import('./verify.js'),
        ])
        // whatever the first build's steps read off the clock, the second build's steps read a later second
        await nextSecond(Date.now())
        const again = await buildImage({ ...env, noCache: true, variation: VERIFY_VARIATION }, image, {
          onEvent: req.onEvent,
          record: false,
        })
        verify.push(await compareImages(store, image.name, built.digest, again.digest))
      }
    }
    return { images, verify }
  } finally {
    await registry?.close()
    db.close()
  }
}
