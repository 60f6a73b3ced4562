import type { Command } from 'commander'
import type { OutdatedReport } from '../../lifecycle/outdated.js'
import type { GlobalOptions } from '../project.js'
import { findSpecFile } from '../project.js'
import { out, printJson, style, table } from '../render.js'

/**
 * `grail outdated [IMAGE]`: for the newest version of each image and every version an environment runs,
 * the recorded Debian packages the archive has a newer version of (security or not), and the images
 * built on a base image that was rebuilt since.
 */
export function registerOutdated(program: Command, globals: () => GlobalOptions): void {
  program
    .command('outdated')
    .description(
      'packages of the images in use that the Debian archive has newer versions of, and images whose base was rebuilt',
    )
    .argument('[image]', 'only this image')
    .action(async (image: string | undefined) => {
      const g = globals()
      const [{ loadProjectCached }, { resolveHome }, { openDb }, { outdatedReport }] = await Promise.all([
        import('../load-project.js'),
        import('../../home.js'),
        import('../../state/index.js'),
        import('../../lifecycle/outdated.js'),
      ])
      const project = await loadProjectCached(findSpecFile(g))
      const home = resolveHome(project.dir)
      const db = openDb(home.db)
      let report: OutdatedReport
      try {
        report = await outdatedReport({
          project,
          home,
          db,
          now: Date.now(),
          ...(image !== undefined ? { image } : {}),
        })
      } finally {
        db.close()
      }
      if (g.json) printJson(report)
      else for (const line of renderOutdated(report)) out(line)
    })
}

/** The human form: one row per package update, then rebuilt bases, then what was read. */
export function renderOutdated(report: OutdatedReport): string[] {
  const lines: string[] = []
  if (report.images.length === 0) return ['no images built yet: run `grail build`']
  const rows = [['IMAGE', 'VERSION', 'PACKAGE', 'LOCKED', 'AVAILABLE', 'SECURITY', 'RUNS IN'].map(style.bold)]
  for (const i of report.images) {
    const where = i.runningIn.map((r) => `${r.environment}/${r.service}`).join(', ') || '-'
    for (const u of i.updates)
      rows.push([
        i.image,
        `v${i.version}${i.newest ? '' : ' (not newest)'}`,
        u.package,
        u.locked,
        u.available,
        u.security ? style.red('security') : '-',
        where,
      ])
  }
  if (rows.length > 1) lines.push(...table(rows))
  for (const i of report.images)
    if (i.baseOutdated) lines.push(`${style.yellow(`${i.image} v${i.version}`)}: ${i.baseOutdated.cause}`)
  const updates = report.images.reduce((n, i) => n + i.updates.length, 0)
  const security = report.images.reduce((n, i) => n + i.updates.filter((u) => u.security).length, 0)
  const bases = report.images.filter((i) => i.baseOutdated).length
  if (updates === 0 && bases === 0) lines.push('everything is up to date')
  else
    lines.push(
      style.dim(
        `${updates} package update(s) (${security} security), ${bases} image(s) on a rebuilt base; \`grail build --refresh IMAGE\` builds with the newer packages`,
      ),
    )
  const read = [...new Set(report.archives.map((a) => `${a.suite} (${a.date.slice(0, 10)})`))]
  if (read.length > 0) lines.push(style.dim(`archive: ${read.join(', ')}`))
  const none = report.images.filter((i) => i.archive === null).map((i) => `${i.image} v${i.version}`)
  if (none.length > 0) lines.push(style.dim(`not built on a debian base, not checked: ${none.join(', ')}`))
  return lines
}
