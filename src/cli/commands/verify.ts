import type { Command } from 'commander'
import { GrailError } from '../../errors.js'
import type { GlobalOptions } from '../project.js'
import { out, printJson, style } from '../render.js'
import { withEnvironment } from './with-environment.js'

/** `grail verify`: hash what the environment's instances run on; exit 1 when anything is damaged. */
export function registerVerify(program: Command, globals: () => GlobalOptions): void {
  program
    .command('verify')
    .description(
      "check the blobs and shared snapshots the environment's instances run on against their digests and layers",
    )
    .argument('[env]', 'environment')
    .action(async (env: string | undefined) => {
      const g = globals()
      const report = await withEnvironment(g, env, { lock: false }, async (a) => {
        const { verifyEnvironment } = await import('../../drift/verify.js')
        return verifyEnvironment(a)
      })
      const damaged = report.snapshots.length + report.blobs.length
      if (g.json) printJson(report)
      else {
        for (const s of report.snapshots) {
          out(
            `${style.red('snapshot')} ${s.dir} ${style.dim(`(layer ${s.layer})`)}: used by ${s.instances.join(', ')}`,
          )
          for (const d of s.damage.slice(0, 20)) out(`  ${d.path} ${style.dim(d.what.join(', '))}`)
          if (s.damage.length > 20) out(style.dim(`  … and ${s.damage.length - 20} more`))
        }
        for (const b of report.blobs)
          out(`${style.red('blob')} ${b.digest} ${b.problem}: used by ${b.instances.join(', ')}`)
        if (damaged === 0)
          out(`${report.environment}: ${report.images} image(s) verified, ${style.green('nothing damaged')}`)
      }
      if (damaged > 0) {
        throw new GrailError(
          'DAMAGED',
          `${report.environment}: ${report.snapshots.length} snapshot(s) and ${report.blobs.length} blob(s) differ from what was built`,
          {
            hint: '`grail drift --fix` replaces the instances on a damaged snapshot (it unpacks the layer again from its verified blob); `grail build` rebuilds damaged blobs',
          },
        )
      }
    })
}
