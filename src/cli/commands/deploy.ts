import type { Command } from 'commander'
import { GrailError } from '../../errors.js'
import type { Plan } from '../../plan/index.js'
import type { RolloutEvent } from '../../rollout/types.js'
import { buildProgress } from '../progress.js'
import { noteProxies, proxyLine } from '../proxies.js'
import { afterBuild, registriesFor, remoteCacheFrom, renderOutcome, writeLockAfter } from './build.js'
import type { GlobalOptions } from '../project.js'
import { findSpecFile } from '../project.js'
import { afterFailedGate } from '../serving.js'
import { withEnvironment } from './with-environment.js'
import { EXIT, out, printJson, style } from '../render.js'

function renderPlan(p: Plan, buildLines: string[]): void {
  const waiting = p.waiting ?? []
  const blocked = p.blocked ?? []
  // drift a service's drift.policy keeps is not pending: said after the rest, whatever the rest is
  const kept = () => {
    for (const k of p.driftKept ?? [])
      out(
        `  ${style.yellow('kept'.padEnd(10))} ${k.service} ${k.instance}  ${style.dim(`drift: ${k.drift} (drift.policy: ${k.policy})`)}`,
      )
  }
  if (p.actions.length === 0 && waiting.length === 0 && buildLines.length === 0 && blocked.length === 0) {
    out(`${p.environment}: up to date, nothing to do`)
    kept()
    return
  }
  const counts = [
    ...(p.actions.length > 0 ? [`${p.actions.length} action${p.actions.length === 1 ? '' : 's'}`] : []),
    ...(buildLines.length > 0
      ? [`${buildLines.length} image${buildLines.length === 1 ? '' : 's'} to build`]
      : []),
    ...(blocked.length > 0 ? [`${blocked.length} blocked`] : []),
  ]
  if (counts.length > 0) out(style.bold(`${p.environment}: ${counts.join(', ')}`))
  // the reason itself is the error that follows
  for (const b of blocked)
    out(
      `  ${style.red('blocked'.padEnd(10))} ${b.service}  image ${b.image.name}@${b.image.version} is revoked`,
    )
  for (const line of buildLines) out(`  ${style.yellow('build'.padEnd(10))} ${line}`)
  for (const a of p.actions) {
    const what = 'instance' in a ? a.instance : 'instances' in a ? a.instances.join(', ') : ''
    out(`  ${style.cyan(a.kind.padEnd(10))} ${a.service}${what ? ` ${what}` : ''}  ${style.dim(a.reason)}`)
  }
  if (waiting.length > 0) renderWaiting(p.environment, waiting)
  kept()
}

/** What a crash loop holds back, with the last lines of the instance's log. */
export function renderWaiting(environment: string, waiting: Plan['waiting']): void {
  out(style.bold(`${environment}: ${waiting.length} held back`))
  for (const w of waiting) {
    out(
      `  ${style.yellow('waiting'.padEnd(10))} ${w.service}${w.instance ? ` ${w.instance}` : ''}  ${w.reason}`,
    )
    if (w.log.length > 0 && w.instance) {
      out(style.dim(`    last ${w.log.length} log line${w.log.length === 1 ? '' : 's'} of ${w.instance}:`))
      for (const l of w.log) out(style.dim(`    | ${l}`))
    }
  }
}

function rolloutPrinter(json: boolean): (service: string, e: RolloutEvent) => void {
  if (json) return () => {}
  return (service, e) => {
    switch (e.type) {
      case 'instance-healthy':
        out(`  ${service}: ${e.instance} healthy`)
        break
      case 'instance-unhealthy':
        out(`  ${service}: ${style.red(`${e.instance} unhealthy`)}: ${e.reason}`)
        break
      case 'instance-destroyed':
        out(`  ${service}: ${e.instance} destroyed ${style.dim(`(${e.reason})`)}`)
        break
      case 'rolled-back':
        out(`  ${service}: ${style.red(`release ${e.release} rolled back`)}: ${e.reason}`)
        break
      case 'release-active':
        out(`  ${service}: ${style.green(`release ${e.release} active`)}`)
        break
    }
  }
}

/** `grail plan`, `grail apply` and `grail up`. */
export function registerDeploy(program: Command, globals: () => GlobalOptions): void {
  program
    .command('plan')
    .description('show what apply would do, and why (no changes)')
    .argument('[env]', 'environment')
    .option('--detailed-exitcode', 'exit 2 when there are changes to apply')
    .action(async (env: string | undefined, flags: { detailedExitcode?: boolean }) => {
      const g = globals()
      const { blockedByRevocation, planReport, pendingBuildLines } = await import('../../engine/deploy.js')
      const p = await withEnvironment(g, env, { lock: false }, async (a) => {
        const r = await planReport(a, Date.now())
        noteProxies(r.proxies)
        return r.plan
      })
      if (g.json) printJson(p)
      else renderPlan(p, pendingBuildLines(p))
      // a revoked image nothing may replace is an error, not a pending change: exit 1 with or without
      // --detailed-exitcode, as apply does
      if (p.blocked.length > 0) throw blockedByRevocation(p)
      // a crash loop backing off is pending too: the environment has not converged
      if (flags.detailedExitcode && p.actions.length + p.waiting.length + p.builds.length > 0)
        process.exitCode = EXIT.pending
    })

  const apply = async (
    g: GlobalOptions,
    env: string | undefined,
    opts: { locked?: boolean; waitForLock?: boolean } = {},
  ) => {
    const { deployEnvironment } = await import('../../engine/deploy.js')
    const lock = opts.waitForLock ? 'wait' : true
    const res = await withEnvironment(g, env, { lock }, (a) =>
      deployEnvironment({ ...a, onEvent: rolloutPrinter(g.json === true) }, { locked: opts.locked === true }),
    )
    if (g.json) printJson(res)
    else {
      for (const r of res.recovered) out(style.yellow(`recovered: ${r}`))
      for (const p of res.pulled) out(`pulled ${p}`)
      for (const p of res.proxies) if (p.state !== 'up') out(proxyLine(p))
      renderPlan(res.plan, [])
      for (const s of res.serving) {
        if (s.release === undefined) out(`${style.bold(s.service)}: ${style.red('nothing serves yet')}`)
        else if (s.url) out(`${style.bold(s.service)}: ${style.cyan(s.url)}`)
      }
    }
    if (res.failed.length > 0) {
      const f = res.failed[0] as (typeof res.failed)[number]
      throw new GrailError(
        'REPLACEMENT_FAILED',
        `${res.failed.map((x) => `${x.service}: new instance ${x.instance}`).join(', ')} failed the health gate: ${f.reason}`,
        {
          hint: 'it counts towards the crash loop (see `grail status`); fix the image or its config, then `grail up`',
        },
      )
    }
    const failed = res.results.filter((r) => !r.ok)
    if (failed.length > 0) {
      const lines = failed.map((f) =>
        afterFailedGate(res.serving, {
          service: f.release.service,
          release: f.release.number,
          reason: f.reason,
        }),
      )
      const nothing = failed.some(
        (f) => res.serving.find((s) => s.service === f.release.service)?.release === undefined,
      )
      throw new GrailError('ROLLED_BACK', lines.join('; '), {
        hint: nothing
          ? 'fix the image or its config so that its health check passes within rollout.healthTimeout, then `grail up`; `grail logs INSTANCE` and `grail events` show why it failed'
          : 'fix the image or its config, then `grail up`; see `grail status` and `grail logs INSTANCE`',
      })
    }
  }

  program
    .command('apply')
    .description(
      'converge an environment: deploy new releases by replacement, replace missing or unhealthy instances',
    )
    .argument('[env]', 'environment')
    .option(
      '--locked',
      'deploy exactly the image digests of grail.lock (fails when the lock does not match the spec)',
    )
    .action(async (env: string | undefined, flags: { locked?: boolean }) =>
      apply(globals(), env, { locked: flags.locked === true }),
    )

  program
    .command('up')
    .description('build the images, then apply: the whole loop in one command')
    .argument('[env]', 'environment')
    .action(async (env: string | undefined) => {
      const g = globals()
      const [{ loadProjectCached }, { runBuild }, { resolveHome }] = await Promise.all([
        import('../load-project.js'),
        import('../../build/index.js'),
        import('../../home.js'),
      ])
      const project = await loadProjectCached(findSpecFile(g))
      const environment = env ?? Object.keys(project.environments)[0] ?? 'local'
      // before building: `up nosuch` is the same error as `plan nosuch`, and builds nothing
      const { requireEnvironment } = await import('../../spec/environments.js')
      requireEnvironment(project, environment)
      await (await import('../../lifecycle/lock.js')).readLock(project)
      const images = [
        ...new Set(Object.values(project.environments[environment]?.services ?? {}).map((s) => s.image)),
      ]
      // the spec's `registry.cache.from`/`to` hold for the build of `up` as for `grail build`
      const registries = await registriesFor(project, {})
      const cache = registries.cache.from ? await remoteCacheFrom(registries.cache.from, project) : undefined
      const built = await runBuild({
        project,
        home: resolveHome(project.dir),
        images,
        onEvent: buildProgress({ verbose: false, enabled: !g.json }),
        ...(cache ? { remoteCache: cache.remote } : {}),
      })
      await writeLockAfter(project, built)
      await afterBuild(project, built, registries)
      if (!g.json) renderOutcome(built)
      // a concurrent `up` of the same project: wait for its apply, then converge on the same versions
      await apply(g, environment, { waitForLock: true })
    })
}
