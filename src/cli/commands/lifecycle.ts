import type { Command } from 'commander'
import { GrailError } from '../../errors.js'
import type { GlobalOptions } from '../project.js'
import { out, printJson, style } from '../render.js'
import { withEnvironment } from './with-environment.js'

const isRecycle = (reason: string): boolean => reason.startsWith('age ')

/** `grail recycle`. */
export function registerLifecycle(program: Command, globals: () => GlobalOptions): void {
  program
    .command('recycle')
    .description(
      'replace instances older than their service recycle.maxAge (oldest first, a disruption budget at a time)',
    )
    .argument('[env]', 'environment')
    .option('--dry-run', 'only list the instances that are due, with their age')
    .action(async (env: string | undefined, flags: { dryRun?: boolean }) => {
      const g = globals()
      const res = await withEnvironment(g, env, { lock: flags.dryRun !== true }, async (a) => {
        const { planEnvironment, applyEnvironment } = await import('../../rollout/apply.js')
        if (flags.dryRun) {
          const p = await planEnvironment(a)
          return {
            environment: a.environment,
            actions: p.actions.filter((x) => x.kind === 'replace' && isRecycle(x.reason)),
            done: false,
          }
        }
        const r = await applyEnvironment(a, { only: (x) => x.kind === 'replace' && isRecycle(x.reason) })
        return { environment: a.environment, actions: r.plan.actions, done: true }
      })
      if (g.json) {
        printJson(res)
        return
      }
      if (res.actions.length === 0) out(`${res.environment}: no instance is due for recycling`)
      for (const x of res.actions) {
        const id = 'instance' in x ? x.instance : x.service
        out(
          `${res.done ? style.green('recycled') : style.cyan('due')} ${x.service} ${id}  ${style.dim(x.reason)}`,
        )
      }
    })

  program
    .command('promote')
    .description('deploy the exact release of a service from one environment in another (nothing is built)')
    .argument('<service>', 'service name')
    .requiredOption('--from <env>', 'the environment whose active release is promoted')
    .requiredOption('--to <env>', 'the environment that receives it')
    .action(async (service: string, flags: { from: string; to: string }) => {
      const g = globals()
      const res = await withEnvironment(g, flags.to, { lock: true }, async (a) => {
        const { promote } = await import('../../lifecycle/promote.js')
        return promote(a, service, flags.from)
      })
      if (g.json) printJson(res)
      else if (!res.deployed)
        out(`${flags.to}: ${service} already runs ${flags.from}#${res.from.release} (same image and config)`)
      else
        out(
          `${flags.to}: ${service} release #${res.to.release} = ${flags.from}#${res.from.release} ${style.dim(res.imageDigest)} ${res.rollout?.ok ? style.green('active') : style.red('rolled back')}`,
        )
      if (res.rollout && !res.rollout.ok) {
        throw new GrailError(
          'ROLLED_BACK',
          `${service} in ${flags.to}: the promoted release was rolled back: ${res.rollout.reason}`,
          {
            hint: 'the previous release is still serving; see `grail status ' + flags.to + '`',
          },
        )
      }
    })
}
