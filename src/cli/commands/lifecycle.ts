import type { Command } from 'commander'
import { GrailError } from '../../errors.js'
import type { GlobalOptions } from '../project.js'
import { out, printJson, style } from '../render.js'
import { afterFailedGate } from '../serving.js'
import { withEnvironment } from './with-environment.js'

/** The registry `gc --registry` sweeps: the URL given, else the project's `registry:`. */
async function gcRegistry(project: import('../../spec/types.js').Project, url: string | boolean) {
  let spec = project.registry
  if (typeof url === 'string') {
    const { registryFromUrl } = await import('../../lifecycle/registry/build-cache.js')
    spec = registryFromUrl(url, project)
  }
  if (!spec) {
    throw new GrailError(
      'REGISTRY_NOT_CONFIGURED',
      `gc --registry: ${project.file} declares no \`registry:\``,
      {
        hint: 'add `registry: {url: …}` to grail.yaml, give its URL (--registry http[s]://host[:port][/prefix]), or run `grail gc` without --registry',
      },
    )
  }
  const { connectRegistry } = await import('../../lifecycle/registry/index.js')
  return connectRegistry(spec)
}

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
        const { recycleEnvironment } = await import('../../engine/deploy.js')
        return recycleEnvironment(a, { dryRun: flags.dryRun === true, now: Date.now() })
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
        const { promoteReport } = await import('../../engine/promote.js')
        return promoteReport(a, service, flags.from)
      })
      if (g.json) printJson(res)
      else if (!res.deployed)
        out(`${flags.to}: ${service} already runs ${flags.from}#${res.from.release} (same image and config)`)
      else
        out(
          `${flags.to}: ${service} release #${res.to.release} = ${flags.from}#${res.from.release} ${style.dim(res.imageDigest)} ${res.rollout?.ok ? style.green('active') : style.red('rolled back')}`,
        )
      if (res.rollout && !res.rollout.ok) {
        const what = afterFailedGate(res.serving, {
          service,
          release: res.to.release ?? 0,
          reason: res.rollout.reason,
        })
        throw new GrailError('ROLLED_BACK', `${flags.to}: promoted ${what}`, {
          hint: `see \`grail status ${flags.to}\`; the release in ${flags.from} is unchanged`,
        })
      }
    })

  program
    .command('gc')
    .description('delete image versions, layers and snapshots that nothing needs (see policies.gc)')
    .option('--dry-run', 'only list what would go and the bytes it would free')
    .option('--grace <duration>', 'keep blobs and snapshots touched within this long (default 10m)')
    .option(
      '--registry [url]',
      'also delete from the registry (of grail.yaml, or the URL http[s]://host[:port][/prefix]) the manifests of the versions gc collects, never a protected one',
    )
    .action(async (flags: { dryRun?: boolean; grace?: string; registry?: boolean | string }) => {
      const g = globals()
      const { parseDuration } = await import('../../spec/duration.js')
      const graceMs = flags.grace === undefined ? undefined : parseDuration(flags.grace)
      if (flags.grace !== undefined && graceMs === undefined) {
        throw new GrailError('BAD_DURATION', `--grace ${flags.grace} is not a duration`, {
          hint: 'for example 10m or 0s',
        })
      }
      const { res, registry } = await withEnvironment(
        g,
        undefined,
        { lock: flags.dryRun !== true },
        async (a, project) => {
          // connected first: a registry that is not configured or refuses the credentials stops gc before
          // it deletes anything
          const reg = flags.registry === undefined ? undefined : await gcRegistry(project, flags.registry)
          const { collectGarbage } = await import('../../lifecycle/gc.js')
          const res = await collectGarbage(a, {
            dryRun: flags.dryRun === true,
            ...(graceMs !== undefined ? { graceMs } : {}),
          })
          if (!reg) return { res, registry: undefined }
          const { sweepRegistry } = await import('../../lifecycle/registry/registry-gc.js')
          return { res, registry: await sweepRegistry(a, reg, { dryRun: flags.dryRun === true }) }
        },
      )
      if (g.json) printJson(registry ? { ...res, registry } : res)
      else {
        if (registry) {
          const verb = registry.dryRun ? 'would delete' : 'deleted'
          for (const d of registry.deleted)
            out(
              `${style.yellow(verb)} ${registry.registry}/${d.repository}@${d.digest}${d.tags.length ? ` ${style.dim(`(${d.tags.join(', ')})`)}` : ''}  ${style.dim(`${d.image}@${d.version}`)}`,
            )
          for (const s of registry.spared)
            out(style.dim(`kept in the registry: ${s.image}@${s.version} ${s.digest} (${s.why})`))
          out(
            `${registry.dryRun ? 'dry run: ' : ''}${registry.registry}: ${registry.deleted.length} manifest(s) ${verb}${registry.absent ? `; ${registry.absent} collected version(s) not in the registry` : ''}`,
          )
        }
        const { formatBytes } = await import('../render.js')
        const verb = res.dryRun ? 'would delete' : 'deleted'
        for (const i of res.images.collected)
          out(`${style.yellow(verb)} ${i.name}@${i.version} ${style.dim(i.digest)}`)
        out(
          `${res.dryRun ? 'dry run: ' : ''}${res.images.collected.length} image version(s) ${verb}, ${res.images.kept} kept; ${res.blobs.deleted} blob(s) (${formatBytes(res.blobs.bytes)}) and ${res.snapshots.deleted} snapshot(s) (${formatBytes(res.snapshots.bytes)}) ${res.dryRun ? 'would be freed' : 'freed'}${res.blobs.young ? `; ${res.blobs.young} recent blob(s) kept for the grace period` : ''}${res.blobs.left ? `; ${res.blobs.left} blob(s) left for the next gc` : ''}`,
        )
      }
      if (res.failed.length > 0) {
        const first = res.failed[0] as { path: string; code: string }
        throw new GrailError(
          'GC_INCOMPLETE',
          `gc could not delete ${res.failed.length} file(s) or dir(s), e.g. ${first.path} (${first.code}); their bytes are not counted as freed`,
          {
            hint: 'see why they cannot be removed (an immutable attribute: lsattr; a read-only mount; a file still open) and run `grail gc` again; the store is valid meanwhile',
            details: res.failed.map((f) => `${f.path}: ${f.message}`),
          },
        )
      }
    })

  for (const [name, pin] of [
    ['pin', true],
    ['unpin', false],
  ] as const) {
    program
      .command(name)
      .description(
        pin ? 'keep an image version through every gc' : 'let gc collect a pinned image version again',
      )
      .argument('<image>', 'IMAGE@VERSION')
      .option('--reason <text>', 'why it is kept', 'pinned by hand')
      .action(async (ref: string, flags: { reason: string }) => {
        const g = globals()
        const { openDb } = await import('../../state/index.js')
        const { setPinned } = await import('../../lifecycle/pin.js')
        const { projectHome } = await import('../project.js')
        const db = openDb(projectHome(g).db)
        try {
          const res = setPinned(db, ref, { pinned: pin, reason: flags.reason })
          if (g.json) printJson(res)
          else out(`${res.name}@${res.version} ${pin ? 'pinned' : 'unpinned'}`)
        } finally {
          db.close()
        }
      })
  }
}
