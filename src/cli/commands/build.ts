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
    .action(async (images: string[], flags: BuildFlags) => {
      const g = globals()
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
      const outcome = await runBuild({
        project,
        home: resolveHome(project.dir),
        images,
        verify: flags.verify === true,
        refresh: flags.refresh === true,
        onEvent: buildProgress({ verbose: flags.verbose === true, enabled: !g.json }),
      })
      const lock = await writeLockAfter(project, outcome)
      if (g.json) printJson({ ...outcome, lock })
      else {
        renderOutcome(outcome)
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
      if (output !== undefined) {
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
