import type { Command } from 'commander'
import type { DriftReport, FileFinding, InstanceDrift } from '../../drift/types.js'
import type { Plan } from '../../plan/index.js'
import { GrailError } from '../../errors.js'
import { isInstanceId } from '../../runtime/local/layout.js'
import type { GlobalOptions } from '../project.js'
import { noteProxies } from '../proxies.js'
import { EXIT, out, printJson, shown, style } from '../render.js'
import { withEnvironment } from './with-environment.js'

function checkInstanceId(id: string): void {
  if (!isInstanceId(id)) {
    throw new GrailError('BAD_INSTANCE_ID', `"${id}" is not an instance id`, {
      hint: 'instance ids are lower-case letters, digits and dashes; see `grail status`',
    })
  }
}

const CLASS_STYLE: Record<FileFinding['class'], (s: string) => string> = {
  unexplained: style.red,
  excused: style.yellow,
  expected: style.dim,
}

function renderInstance(d: InstanceDrift): void {
  const counts = [
    d.unexplained ? style.red(`${d.unexplained} unexplained`) : '',
    d.excused ? style.yellow(`${d.excused} excused`) : '',
    d.expected ? style.dim(`${d.expected} expected`) : '',
  ].filter(Boolean)
  const head = `${style.bold(d.instance)} ${style.dim(`(${d.service} #${d.release})`)}`
  out(`${head}  ${counts.length ? counts.join(', ') : style.green('no drift')}`)
  for (const r of d.runtime) out(`  ${CLASS_STYLE[r.class](r.kind.padEnd(8))} ${r.detail}`)
  if (d.expiredHotfix !== undefined)
    out(`  ${style.red('hotfix')}   #${d.expiredHotfix} expired: due for replacement`)
  for (const f of d.files) {
    const tag =
      f.class === 'excused'
        ? ` excused by hotfix #${f.hotfix}`
        : f.class === 'expected'
          ? ' expected (ignored)'
          : ''
    const what = f.kind === 'C' ? ` ${style.dim(f.what.join(', '))}` : ''
    out(`  ${CLASS_STYLE[f.class](f.kind)} ${f.path}${what}${style.dim(tag)}`)
    if (f.diff) {
      for (const line of f.diff.split('\n').slice(2)) {
        if (line === '') continue
        const colour = line.startsWith('+') ? style.green : line.startsWith('-') ? style.red : style.dim
        out(`      ${colour(line)}`)
      }
    }
  }
  if (d.touched > 0) out(style.dim(`  ${d.touched} path(s) touched without any change`))
}

/** `grail drift`, `grail hotfix`, `grail capture`. */
export function registerDrift(program: Command, globals: () => GlobalOptions): void {
  program
    .command('drift')
    .description(
      'how running instances differ from their release: files (A/C/D), runtime, orphans, unapplied spec',
    )
    .argument('[env]', 'environment')
    .option('--instance <id>', 'only this instance')
    .option('--all', 'also list expected changes (paths under drift.ignore)')
    .option(
      '--fix',
      'replace every drifted instance through the normal rollout (health gates, one at a time)',
    )
    .option('--detailed-exitcode', 'exit 2 when there is unexplained drift')
    .action(
      async (
        env: string | undefined,
        flags: { instance?: string; all?: boolean; fix?: boolean; detailedExitcode?: boolean },
      ) => {
        const g = globals()
        if (flags.instance !== undefined) checkInstanceId(flags.instance)
        const result = await withEnvironment(g, env, { lock: flags.fix === true }, async (a) => {
          const { planWithDrift, applyEnvironment } = await import('../../engine/apply.js')
          const { scanDrift } = await import('../../drift/scan.js')
          const { superviseProxies } = await import('../../rollout/proxies.js')
          if (!flags.fix) noteProxies(await superviseProxies(a))
          let plan: Plan = { environment: a.environment, actions: [], waiting: [], builds: [], blocked: [] }
          let drift: InstanceDrift[]
          const unplannable: Array<{ service: string; reason: string }> = []
          try {
            ;({ plan, drift } = await planWithDrift(a, { now: Date.now(), withDiffs: true }))
          } catch (err) {
            // the spec cannot be planned (an image never built, all versions revoked): drift is still reported
            if (!(err instanceof GrailError) || flags.fix) throw err
            drift = await scanDrift(a, { withDiffs: true })
            unplannable.push({ service: '*', reason: err.message })
          }
          const instances = drift
            .filter((d) => flags.instance === undefined || d.instance === flags.instance)
            .map((d) => (flags.all ? d : { ...d, files: d.files.filter((f) => f.class !== 'expected') }))
          const report: DriftReport = {
            environment: a.environment,
            at: new Date().toISOString(),
            instances,
            desired: [
              ...unplannable,
              ...plan.actions.flatMap((x) =>
                x.kind === 'deploy' ? [{ service: x.service, reason: x.reason }] : [],
              ),
              ...plan.blocked.map((b) => ({ service: b.service, reason: b.reason })),
              ...plan.builds.flatMap((b) =>
                b.services.map((service) => ({ service, reason: `${b.image}: ${b.reason}` })),
              ),
            ],
            drifted: drift.filter((d) => d.unexplained > 0).map((d) => d.instance),
          }
          if (!flags.fix) return { report, fixed: null }
          const fixed = await applyEnvironment(a, {
            only: (x) =>
              (x.kind === 'replace' && (flags.instance === undefined || x.instance === flags.instance)) ||
              (x.kind === 'destroy' && x.cause === 'orphan' && flags.instance === undefined),
          })
          noteProxies(fixed.proxies)
          return { report, fixed }
        })
        const { report, fixed } = result
        if (flags.instance !== undefined && report.instances.length === 0) {
          throw new GrailError(
            'INSTANCE_NOT_FOUND',
            `no instance ${flags.instance} in ${report.environment}`,
            {
              hint: 'list the instances with `grail status`',
            },
          )
        }
        if (g.json) printJson(fixed ? { ...report, fixed: fixed.plan.actions } : report)
        else {
          const drifted = report.drifted.length
          out(
            `${report.environment}: ${report.instances.length} instance(s) scanned, ${drifted ? style.red(`${drifted} drifted`) : style.green('no unexplained drift')}`,
          )
          for (const d of report.instances) {
            if (
              d.files.length === 0 &&
              d.runtime.length === 0 &&
              d.expiredHotfix === undefined &&
              !flags.instance
            )
              continue
            renderInstance(d)
          }
          for (const s of report.desired) out(`${style.yellow('not applied')} ${s.service}: ${s.reason}`)
          if (fixed) {
            if (fixed.plan.actions.length === 0) out('nothing to replace')
            for (const x of fixed.plan.actions)
              out(`${style.cyan(x.kind)} ${'instance' in x ? x.instance : x.service}: ${style.dim(x.reason)}`)
            if (report.desired.length > 0) out(style.dim('run `grail apply` to deploy what the spec changed'))
          }
        }
        if (flags.detailedExitcode && !fixed && report.drifted.length > 0) process.exitCode = EXIT.pending
      },
    )

  program
    .command('hotfix')
    .description('run a command in a live instance, audited; its drift is excused until the TTL ends')
    .argument('<instance>', 'instance id (see grail status)')
    .argument('<command...>', 'the command, after --')
    .requiredOption(
      '--ttl <duration>',
      'how long the change may live, e.g. 30m or 2h (at most policies.hotfix.maxTtl)',
    )
    .option('--reason <text>', 'why: goes into the audit log', '')
    .option('-e, --env <env>', 'environment')
    .action(async (id: string, command: string[], flags: { ttl: string; reason: string; env?: string }) => {
      const g = globals()
      checkInstanceId(id)
      const { parseDuration } = await import('../../spec/duration.js')
      const ttlMs = parseDuration(flags.ttl)
      if (ttlMs === undefined) {
        throw new GrailError('BAD_DURATION', `--ttl ${flags.ttl} is not a duration`, {
          hint: 'use a number with a unit: 90s, 30m, 2h, 1d',
        })
      }
      const res = await withEnvironment(g, flags.env, { lock: true }, async (a) => {
        const { runHotfix } = await import('../../drift/hotfix.js')
        return runHotfix(a, { instance: id, reason: flags.reason, ttlMs, command })
      })
      if (g.json) printJson(res)
      else {
        process.stdout.write(shown(res.exec.stdout))
        process.stderr.write(shown(res.exec.stderr))
        out(
          `hotfix #${res.hotfix.id} on ${id}: exit ${res.exec.code}, ${res.changes.length} file(s) changed, excused until ${res.hotfix.expiresAt}`,
        )
        for (const f of res.changes) {
          out(`  ${f.kind} ${f.path}${f.kind === 'C' ? ` ${style.dim(f.what.join(', '))}` : ''}`)
          for (const line of (f.diff ?? '').split('\n').slice(2)) if (line) out(`      ${line}`)
        }
        out(
          style.dim(
            'make it permanent with `grail capture`, or let the next apply after the TTL replace the instance',
          ),
        )
      }
      if (res.exec.code !== 0) {
        throw new GrailError('HOTFIX_FAILED', `the hotfix command exited ${res.exec.code} in ${id}`, {
          hint: `it is recorded as hotfix #${res.hotfix.id} with what it changed; see \`grail drift --instance ${id}\``,
        })
      }
    })

  program
    .command('capture')
    .description('make a new image version from what changed in a live instance, and add it to grail.yaml')
    .argument('<instance>', 'instance id (see grail status)')
    .option('-e, --env <env>', 'environment')
    .option('--no-spec', 'only make the image; write no files and leave grail.yaml alone')
    .option('--allow-secrets', 'capture changed files that hold a secret (refused otherwise)')
    .action(async (id: string, flags: { env?: string; spec: boolean; allowSecrets?: boolean }) => {
      const g = globals()
      checkInstanceId(id)
      const res = await withEnvironment(g, flags.env, { lock: true }, async (a) => {
        const { captureInstance } = await import('../../drift/capture.js')
        return captureInstance(a, {
          instance: id,
          writeSpec: flags.spec,
          allowSecrets: flags.allowSecrets === true,
        })
      })
      if (g.json) {
        printJson(res)
        return
      }
      out(
        `${style.bold(`${res.image.name} v${res.image.version}`)} ${style.dim(res.image.digest)} = ${res.parent.name} v${res.parent.version} + ${res.changes.length} change(s) from ${res.instance}`,
      )
      for (const c of res.changes) out(`  ${c.kind} ${c.path}`)
      if (res.dir) out(`files written to ${res.dir}/, ${res.steps.length} step(s) added to the spec`)
      for (const w of res.warnings) out(style.yellow(`warning: ${w}`))
    })
}
