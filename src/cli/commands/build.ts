import type { Project } from '../../spec/types.js'
import type { Command } from 'commander'
import type { BuildOutcome } from '../../build/index.js'
import { GrailError } from '../../errors.js'
import { buildProgress } from '../progress.js'
import { removeStamp, stampableArgv } from '../noop-stamp.js'
import { findSpecFile } from '../project.js'
import type { GlobalOptions } from '../project.js'
import { formatBytes, out, printJson, shortDigest, style } from '../render.js'

interface BuildFlags {
  verify?: boolean
  verbose?: boolean
  refresh?: boolean
  /** `registry`, a registry URL, true (the flag alone: `registry`), false (`--no-cache-from`) */
  cacheFrom?: string | boolean
  cacheTo?: string | boolean
  /** true (`registry`), or a registry URL */
  push?: boolean | string
}

/** `grail build [IMAGE...]`: build images; `--verify` rebuilds from nothing and names differing files. */
export function registerBuild(program: Command, globals: () => GlobalOptions): void {
  program
    .command('build')
    .description('build images from grail.yaml (all, or the ones named)')
    .argument('[images...]', 'image names')
    .option('--verify', 'build a second time without any cache and name every file that differs')
    .option('--refresh', 'run every step again (re-resolve Debian packages) and report which images changed')
    .option('-v, --verbose', 'show the output of run steps')
    .option(
      '--cache-from [registry]',
      'reuse the layers of steps the shared build cache in the registry has (`registry`: the one of grail.yaml, or a URL); default: registry.cache.from',
    )
    .option('--no-cache-from', 'do not read the shared build cache, whatever registry.cache.from says')
    .option(
      '--cache-to [registry]',
      'after the build, push its layers and step keys to the shared build cache; default: registry.cache.to',
    )
    .option('--no-cache-to', 'do not write the shared build cache, whatever registry.cache.to says')
    .option(
      '--push [registry]',
      'push the images built, tagged v<version>, to the registry of grail.yaml (or the URL given)',
    )
    .action(async (images: string[], flags: BuildFlags) => {
      const g = globals()
      images = reclaimImageNames(images, flags)
      const startedAt = Date.now()
      const argv = process.argv.slice(2)
      // what this command writes to stdout becomes the no-op stamp's output; anything on stderr, none
      const written = captureOutput(stampableArgv(argv))
      const [{ loadProjectCached }, { runBuild }, { resolveHome }] = await Promise.all([
        import('../load-project.js'),
        import('../../build/engine.js'),
        import('../../home.js'),
      ])
      const project = await loadProjectCached(findSpecFile(g))
      // the fast path (bin/grail.js) answered unless something changed: the stamp goes until this build
      // records a new one
      removeStamp(resolveHome(project.dir).root)
      // before building: a grail.lock that cannot be read would stop the build at its end anyway
      await (await import('../../lifecycle/lock.js')).readLock(project)
      // the registries are connected before anything is built: a bad URL or credential source is the
      // user's to fix now, not after a long build
      const registries = await registriesFor(project, flags)
      const cache = registries.cache.from ? await remoteCacheFrom(registries.cache.from, project) : undefined
      const outcome = await runBuild({
        project,
        home: resolveHome(project.dir),
        images,
        verify: flags.verify === true,
        refresh: flags.refresh === true,
        onEvent: buildProgress({ verbose: flags.verbose === true, enabled: !g.json }),
        ...(cache ? { remoteCache: cache.remote } : {}),
      })
      const lock = await writeLockAfter(project, outcome)
      const pushed = await afterBuild(project, outcome, registries)
      if (g.json) printJson({ ...outcome, lock, ...pushed })
      else {
        renderOutcome(outcome)
        for (const c of pushed.cache ?? [])
          out(
            style.dim(
              `build cache: ${c.reference} ${c.keys} key(s), ${c.uploaded} layer(s) uploaded  ${shortDigest(c.digest)}`,
            ),
          )
        for (const p of pushed.pushed ?? [])
          out(`${style.green('pushed')} ${p.reference} ${style.dim(`(${p.tags.join(', ')})`)}`)
        if (lock.changed.length > 0) out(style.dim(`grail.lock: ${lock.changed.join(', ')} updated`))
        if (lock.upgraded)
          out(style.dim('grail.lock: rewritten in the current format (no local version numbers); commit it'))
        if (flags.refresh) {
          const changed = outcome.images.filter((i) => !i.unchanged).map((i) => `${i.name} v${i.version}`)
          out(
            changed.length > 0
              ? `refreshed: ${changed.length} image(s) changed: ${changed.join(', ')}`
              : 'refreshed: no image changed',
          )
        }
      }
      const output = written.stop()
      // a build that talks to a registry is never a no-op to replay: the registry may have changed
      if (output !== undefined && !registries.any) {
        const { recordNoopStamp } = await import('../noop-record.js')
        // the stamp only saves the next no-op its start-up: failing to write one must not fail the build
        await recordNoopStamp({
          argv,
          project,
          home: resolveHome(project.dir),
          outcome,
          lock,
          stdout: output,
          startedAt,
        }).catch(() => removeStamp(resolveHome(project.dir).root))
      }
      const failed = outcome.verify.filter((v) => !v.reproducible)
      if (failed.length > 0) {
        throw new GrailError(
          'NOT_REPRODUCIBLE',
          `${failed.map((f) => f.image).join(', ')}: a second build from nothing gave a different image`,
          {
            hint: 'the files named above depend on what the second build varies (the time, host name, time zone, locale, environment order, build path: see docs/building.md); make the step deterministic, e.g. take the time from $SOURCE_DATE_EPOCH',
          },
        )
      }
    })
}

/**
 * `--push`, `--cache-from` and `--cache-to` take an optional `registry` or URL, so `build --push web`
 * reads `web` as the flag's value: a value that is neither is an image name given after the flag.
 */
function reclaimImageNames(images: string[], flags: BuildFlags): string[] {
  const out = [...images]
  for (const k of ['push', 'cacheFrom', 'cacheTo'] as const) {
    const v = flags[k]
    if (typeof v === 'string' && v !== 'registry' && !v.includes('://')) {
      out.push(v)
      flags[k] = true
    }
  }
  return out
}

type CacheRegistries = import('../../lifecycle/registry/build-cache.js').BuildCacheRegistries
type Registry = import('../../lifecycle/registry/connect.js').Registry

/**
 * The registries a build talks to: the shared cache's (flags, else the spec's `registry.cache`), and with
 * `--push` the project's. Nothing is loaded when none is wanted.
 */
export async function registriesFor(
  project: Project,
  flags: Pick<BuildFlags, 'cacheFrom' | 'cacheTo' | 'push'>,
): Promise<{ cache: CacheRegistries; push?: Registry; any: boolean }> {
  const wanted =
    (flags.push !== undefined && flags.push !== false) ||
    (flags.cacheFrom !== undefined && flags.cacheFrom !== false) ||
    (flags.cacheTo !== undefined && flags.cacheTo !== false) ||
    (project.registry !== undefined && (project.registry.cache.from || project.registry.cache.to))
  if (!wanted) return { cache: {}, any: false }
  const { buildCacheRegistries } = await import('../../lifecycle/registry/build-cache.js')
  const cache = await buildCacheRegistries(project, { from: flags.cacheFrom, to: flags.cacheTo })
  let push: Registry | undefined
  if (flags.push !== undefined && flags.push !== false) {
    let spec = project.registry
    if (typeof flags.push === 'string' && flags.push !== 'registry') {
      const { registryFromUrl } = await import('../../lifecycle/registry/build-cache.js')
      spec = registryFromUrl(flags.push, project)
    }
    if (!spec) {
      throw new GrailError('REGISTRY_NOT_CONFIGURED', `--push: ${project.file} declares no \`registry:\``, {
        hint: 'add `registry: {url: …}` to grail.yaml (docs/registry.md), or give its URL: --push http[s]://host[:port][/prefix]',
      })
    }
    const same = [cache.from, cache.to].find((r) => r?.spec.url === spec.url && r.spec.prefix === spec.prefix)
    if (same) push = same
    else {
      const { connectRegistry } = await import('../../lifecycle/registry/index.js')
      push = await connectRegistry(spec)
    }
  }
  return {
    cache,
    ...(push ? { push } : {}),
    any: cache.from !== undefined || cache.to !== undefined || push !== undefined,
  }
}

/** The shared cache a build reads (`--cache-from`); warnings go to stderr, one per image at most. */
export async function remoteCacheFrom(
  registry: Registry,
  project: Project,
): Promise<{ remote: import('../../build/remote-cache.js').RemoteCache }> {
  const [{ registryRemoteCache }, { openStore }, { resolveHome }] = await Promise.all([
    import('../../lifecycle/registry/cache.js'),
    import('../../oci/store.js'),
    import('../../home.js'),
  ])
  const home = resolveHome(project.dir)
  const remote = registryRemoteCache({
    registry,
    store: await openStore(home.oci, home.tmp),
    warn: (line) => process.stderr.write(`${style.yellow(line)}\n`),
  })
  return { remote }
}

/** After a successful build: `--cache-to` pushes the build cache, `--push` the images. */
export async function afterBuild(
  project: Project,
  outcome: BuildOutcome,
  registries: { cache: CacheRegistries; push?: Registry },
): Promise<{
  cache?: import('../../lifecycle/registry/cache.js').CachePushReport[]
  pushed?: import('../../lifecycle/registry/push.js').PushedImage[]
}> {
  if (!registries.cache.to && !registries.push) return {}
  const [{ openStore }, { resolveHome }, { openDb }] = await Promise.all([
    import('../../oci/store.js'),
    import('../../home.js'),
    import('../../state/index.js'),
  ])
  const home = resolveHome(project.dir)
  const store = await openStore(home.oci, home.tmp)
  const db = openDb(home.db)
  try {
    const res: Awaited<ReturnType<typeof afterBuild>> = {}
    if (registries.cache.to) {
      const { pushBuildCache } = await import('../../lifecycle/registry/cache.js')
      res.cache = await pushBuildCache({
        registry: registries.cache.to,
        store,
        db,
        images: outcome.images,
        warn: (line) => process.stderr.write(`${style.yellow(line)}\n`),
      })
    }
    if (registries.push) {
      const { pushImages } = await import('../../lifecycle/registry/index.js')
      res.pushed = await pushImages(
        registries.push,
        store,
        db,
        outcome.images.map((i) => i.record),
        {},
      )
    }
    return res
  } finally {
    db.close()
  }
}

export function renderOutcome(outcome: BuildOutcome): void {
  for (const img of outcome.images) {
    if (img.restored) {
      out(
        `${style.yellow('restored')} ${style.bold(img.name)} v${img.version} ${style.dim('(its missing or corrupt blobs were built again)')}  ${img.digest}`,
      )
    } else if (img.unchanged) {
      out(
        `${style.bold(img.name)} v${img.version} unchanged ${style.dim('(nothing to build)')}  ${img.digest}`,
      )
    } else {
      out(
        `${style.green('built')} ${style.bold(img.name)} v${img.version}  ${img.digest}  ${formatBytes(img.size)}`,
      )
    }
  }
  for (const v of outcome.verify) {
    if (v.reproducible) {
      out(
        `${style.green('verified')} ${v.image}: a second build from nothing gave the same digest ${shortDigest(v.first)}`,
      )
      continue
    }
    out(`${style.red('NOT reproducible')} ${v.image}: ${shortDigest(v.first)} ≠ ${shortDigest(v.second)}`)
    for (const f of v.files)
      out(`  ${f.path}  ${style.yellow(f.what.join(', '))}  ${style.dim(`(layer ${f.layer}: ${f.step})`)}`)
    if (v.config.length) out(`  image config differs in: ${v.config.join(', ')}`)
  }
}

/** Records what was built in grail.lock (meant for git; `apply --locked` deploys exactly it). */
export async function writeLockAfter(
  project: Project,
  outcome: BuildOutcome,
): Promise<{ changed: string[]; upgraded: boolean }> {
  const [{ writeLock }, { openStore }, { resolveHome }] = await Promise.all([
    import('../../lifecycle/lock.js'),
    import('../../oci/store.js'),
    import('../../home.js'),
  ])
  const home = resolveHome(project.dir)
  return writeLock(project, await openStore(home.oci, home.tmp), outcome.images)
}

/**
 * Copies what the command writes to stdout while `enabled`; `stop` restores the streams and returns the
 * text, or undefined when disabled or when anything went to stderr (a no-op stamp repeats stdout only).
 */
function captureOutput(enabled: boolean): { stop: () => string | undefined } {
  if (!enabled) return { stop: () => undefined }
  const chunks: string[] = []
  let stderr = false
  const outWrite = process.stdout.write
  const errWrite = process.stderr.write
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'))
    return outWrite.call(process.stdout, chunk, ...rest)
  }) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    stderr = true
    return errWrite.call(process.stderr, chunk, ...rest)
  }) as typeof process.stderr.write
  return {
    stop: () => {
      process.stdout.write = outWrite
      process.stderr.write = errWrite
      return stderr ? undefined : chunks.join('')
    },
  }
}
