import type { Command } from 'commander'
import type { GlobalOptions } from '../project.js'
import { projectHome } from '../project.js'
import { formatAge, formatBytes, out, printJson, shortDigest, style, table } from '../render.js'

/** `grail images`: the image catalog, newest version first per name. */
export function registerImages(program: Command, globals: () => GlobalOptions): void {
  program
    .command('images')
    .description('list built images: version, digest, size, packages, status')
    .action(async () => {
      const g = globals()
      const home = projectHome(g)
      const { openDb, listImages } = await import('../../state/index.js')
      const db = openDb(home.db)
      try {
        const images = listImages(db)
        if (g.json) {
          printJson(images)
          return
        }
        if (images.length === 0) {
          out('no images yet: run `grail build`')
          return
        }
        const rows = [
          ['IMAGE', 'VERSION', 'DIGEST', 'SIZE', 'PACKAGES', 'CREATED', 'COMMIT', 'STATUS'].map(style.bold),
        ]
        for (const i of images) {
          rows.push([
            i.name,
            `v${i.version}`,
            shortDigest(i.digest),
            formatBytes(i.size),
            String(i.packages.length),
            `${formatAge(i.createdAt)} ago`,
            i.gitCommit ? i.gitCommit.slice(0, 8) + (i.gitCommit.endsWith('-dirty') ? '+' : '') : '-',
            i.status === 'active' ? i.status : style.yellow(i.status),
          ])
        }
        for (const line of table(rows)) out(line)
      } finally {
        db.close()
      }
    })
}
