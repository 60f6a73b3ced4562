import type { Command } from 'commander'
import { GrailError } from '../../errors.js'
import { wholeNumber } from '../args.js'
import type { GlobalOptions } from '../project.js'
import { proxyLine, proxyWasDown } from '../proxies.js'
import { EXIT, formatAge, out, printJson, shortDigest, shown, style, table } from '../render.js'
import { withEnvironment } from './with-environment.js'

/** `grail status`, `grail logs`, `grail down`, `grail rollback`. */
export function registerOperate(program: Command, globals: () => GlobalOptions): void {
  program
    .command('status')
    .description('instances of an environment: release, image version, age, health, pid')
    .argument('[env]', 'environment')
    .action(async (env: string | undefined) => {
      const g = globals()
      const rows = await withEnvironment(g, env, { lock: false, fromState: true }, async (a) => {
        const { statusReport } = await import('../../engine/status.js')
        return statusReport(a)
      })
      if (proxyWasDown(rows.proxies)) process.exitCode = EXIT.user
      if (g.json) {
        printJson(rows)
        return
      }
      if (rows.instances.length === 0) out(`${rows.environment}: no instances`)
      else {
        const lines = [
          ['INSTANCE', 'SERVICE', 'RELEASE', 'IMAGE', 'AGE', 'HEALTH', 'PID', 'PORT'].map(style.bold),
        ]
        for (const i of rows.instances) {
          const probe = i.probe
          const health =
            i.health === 'unhealthy' && probe
              ? `unhealthy (last probe: ${probe.detail}, ${formatAge(probe.at)} ago)`
              : i.health === 'failing' && probe
                ? `failing (last probe: ${probe.detail}, ${formatAge(probe.at)} ago, ${probe.failures} in a row)`
                : i.health
          lines.push([
            i.id,
            i.service,
            `#${i.release}`,
            i.image,
            formatAge(i.createdAt),
            health === 'healthy' ? style.green(health) : style.yellow(health),
            String(i.pid ?? '-'),
            String(i.port ?? '-'),
          ])
        }
        for (const l of table(lines)) out(l)
      }
      for (const c of rows.crashLoops) {
        out(style.red(`${c.service}: ${c.summary}`))
        if (c.instance && c.log.length > 0) {
          out(style.dim(`  last ${c.log.length} log line${c.log.length === 1 ? '' : 's'} of ${c.instance}:`))
          for (const l of c.log) out(style.dim(`  | ${l}`))
        }
      }
      for (const r of rows.releases
        .filter((r) => r.status === 'rolled-back' || r.status === 'failed')
        .slice(0, 3)) {
        out(
          style.yellow(
            `release ${r.service}#${r.number} (${shortDigest(r.imageDigest)}) ${r.status}: ${r.reason}`,
          ),
        )
      }
      for (const p of rows.proxies) out(proxyLine(p))
    })

  program
    .command('logs')
    .description("an instance's output")
    .argument('<instance>', 'instance id (see grail status)')
    .option('-n, --tail <lines>', 'only the last lines', wholeNumber('a number of lines'))
    .action(async (id: string, flags: { tail?: number }) => {
      const g = globals()
      const text = await withEnvironment(g, undefined, { lock: false, fromState: true }, async (a) => {
        const h = { id, provider: a.provider.name }
        await a.provider.inspect(h) // an id that names no instance is an error, not empty output
        return a.provider.logs(h, { tailLines: flags.tail })
      })
      process.stdout.write(shown(text))
    })

  program
    .command('down')
    .description('destroy every instance and the proxy of an environment (volumes are kept)')
    .argument('[env]', 'environment')
    .option('--volumes', 'also delete the volumes of this environment')
    .action(async (env: string | undefined, flags: { volumes?: boolean }) => {
      const g = globals()
      const done = await withEnvironment(g, env, { lock: true, fromState: true }, async (a, project) => {
        const { downEnvironment } = await import('../../rollout/down.js')
        const { servicesOf } = await import('../project-from-state.js')
        return downEnvironment(a, {
          volumes: flags.volumes === true,
          services: servicesOf(a.db, project, a.environment),
        })
      })
      if (g.json) printJson(done)
      else
        out(
          `${done.environment}: destroyed ${done.instances.length} instance(s)${done.volumes ? ' and the volumes' : ''}`,
        )
      if (done.failed.length > 0)
        throw new GrailError('DOWN_INCOMPLETE', `${done.environment}: down could not remove everything`, {
          details: done.failed.map((f) => `${f.what}: ${f.error}`),
          hint: `fix the cause and run \`grail down\` again${flags.volumes ? '; the volumes were kept' : ''}`,
        })
    })

  program
    .command('rollback')
    .description('re-deploy an earlier release of a service (default: the one before the active one)')
    .argument('<service>', 'service name')
    .argument('[release]', 'release number', wholeNumber('a release number'))
    .option('-e, --env <env>', 'environment')
    .action(async (service: string, releaseNo: number | undefined, flags: { env?: string }) => {
      const g = globals()
      const res = await withEnvironment(g, flags.env, { lock: true }, async (a) => {
        const { rollbackService } = await import('../../engine/rollback.js')
        return rollbackService(a, { service, release: releaseNo })
      })
      if (g.json) printJson(res)
      else if (!res.ok) out(`${service}: rollback failed: ${res.reason}`)
      else {
        out(`${service}: release #${res.release.number} active again`)
        if (res.nextApply && res.promoted)
          out(
            style.yellow(
              `warning: ${res.environment} runs what is promoted to it, and its newest promotion is ${res.nextApply}: the next \`grail apply\` of ${res.environment} replaces release #${res.release.number} again and undoes this rollback. To keep it, revoke that version (\`grail revoke IMAGE@VERSION --reason …\`)`,
            ),
          )
        else if (res.nextApply)
          out(
            style.yellow(
              `warning: the spec still deploys ${res.nextApply}: the next \`grail apply\` or \`grail up\` of ${res.environment} replaces release #${res.release.number} again and undoes this rollback. To keep it, make the spec build what #${res.release.number} runs (revert the change in git), or revoke the version it deploys (\`grail revoke IMAGE@VERSION --reason …\`)`,
            ),
          )
        else out(`the spec deploys what release #${res.release.number} runs: the next apply keeps it`)
      }
      if (!res.ok)
        throw new GrailError(
          'ROLLBACK_FAILED',
          `${service}: release #${res.release.number} did not become healthy`,
          { hint: 'see `grail status`' },
        )
    })
}
