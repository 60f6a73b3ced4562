import type { Command } from 'commander'
import { GrailError } from '../../errors.js'
import { wholeNumber } from '../args.js'
import type { GlobalOptions } from '../project.js'
import type { ApplyEnv } from '../../engine/types.js'
import type { ProxyReport } from '../../rollout/proxies.js'
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
        const { environmentStatus } = await import('../../rollout/status.js')
        const seen = await environmentStatus(a)
        const out: Array<Record<string, unknown>> = []
        for (const { record: rec, observed: obs, release: rel, health, probe } of seen.instances) {
          out.push({
            id: rec.id,
            service: rec.service,
            release: rec.releaseNumber,
            image: rel ? `${rel.imageName} v${rel.imageVersion}` : '?',
            digest: rel?.imageDigest,
            createdAt: rec.createdAt,
            health,
            probe: probe
              ? { at: probe.at, ok: probe.ok, detail: probe.detail, failures: probe.failures }
              : null,
            pid: obs.pid ?? null,
            port: rec.hostPort,
          })
        }
        return {
          environment: a.environment,
          instances: out,
          crashLoops: seen.crashLoops.map((c) => ({
            service: c.service,
            release: c.release,
            restarts: c.restarts,
            summary: c.summary,
            nextAttemptAt: new Date(c.nextAttemptAt).toISOString(),
            instance: c.instance,
            log: c.log,
          })),
          releases: seen.releases,
          proxies: await proxiesOf(a),
        }
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
          const probe = i.probe as { at: string; detail: string; failures: number } | null
          const health =
            i.health === 'unhealthy' && probe
              ? `unhealthy (last probe: ${probe.detail}, ${formatAge(probe.at)} ago)`
              : i.health === 'failing' && probe
                ? `failing (last probe: ${probe.detail}, ${formatAge(probe.at)} ago, ${probe.failures} in a row)`
                : String(i.health)
          lines.push([
            String(i.id),
            String(i.service),
            `#${i.release}`,
            String(i.image),
            formatAge(String(i.createdAt)),
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
        const { listReleases, revokedDigests } = await import('../../state/index.js')
        const { rollbackTarget } = await import('../../plan/index.js')
        const { deploy } = await import('../../rollout/execute.js')
        const svc = a.project.environments[a.environment]?.services[service]
        if (!svc)
          throw new GrailError('UNKNOWN_SERVICE', `no service "${service}" in ${a.environment}`, {
            hint: 'see `grail status`',
          })
        const releases = listReleases(a.db, a.environment, service)
        const choice = rollbackTarget(releases, revokedDigests(a.db), releaseNo)
        const list = releases.map((r) => `#${r.number} ${r.status}`).join(', ') || 'none'
        if (choice.kind === 'revoked') {
          throw new GrailError('RELEASE_REVOKED', `${a.environment}: ${service}: ${choice.reason}`, {
            hint: `roll back to a release whose image is not revoked (releases: ${list}), or unrevoke it (\`grail unrevoke ${choice.release.imageName}@${choice.release.imageVersion}\`)`,
          })
        }
        if (choice.kind === 'none') {
          throw new GrailError('NO_SUCH_RELEASE', `${a.environment}: ${service}: ${choice.reason}`, {
            hint: `releases: ${list}`,
          })
        }
        const target = choice.release
        const r = await deploy(a, svc, target)
        if (!r.ok) return { ...r, environment: a.environment, promoted: false, nextApply: null }
        // rollback pins nothing: apply deploys what the spec builds now, so say whether that undoes this
        const { desiredServices } = await import('../../engine/apply.js')
        const want = (await desiredServices(a)).find((d) => d.service === service)
        const same = want?.image?.digest === target.imageDigest && want.configDigest === target.configDigest
        return {
          ...r,
          environment: a.environment,
          promoted: want?.promoted === true,
          nextApply: same
            ? null
            : want?.image
              ? `${want.image.name} v${want.image.version}${want.configDigest === target.configDigest ? '' : " with the spec's config"}`
              : `a new build of ${svc.image}`,
        }
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

/**
 * The proxies part of `status`: each published service's proxy, a dead one restarted (status exits 1
 * when it found one down, so a monitor notices even though it serves again).
 */
async function proxiesOf(a: ApplyEnv): Promise<ProxyReport[]> {
  const { superviseProxies } = await import('../../rollout/proxies.js')
  return superviseProxies(a)
}
