import type { Command } from 'commander'
import type { ListedImage } from '../../engine/images.js'
import type { GlobalOptions } from '../project.js'
import { projectHome } from '../project.js'
import { formatAge, formatBytes, out, printJson, shortDigest, style, table } from '../render.js'

/** `grail images`: the image catalog, newest version first per name. */
export function registerImages(program: Command, globals: () => GlobalOptions): void {
  program
    .command('images')
    .description("list built images: version (this machine's catalog number), digest, size, packages, status")
    .option('--tree', 'show ancestry: each image under the image version it was built on')
    .action(async (flags: { tree?: boolean }) => {
      const g = globals()
      const home = projectHome(g)
      const [{ openDb }, { imageCatalog }] = await Promise.all([
        import('../../state/index.js'),
        import('../../engine/images.js'),
      ])
      const db = openDb(home.db)
      let catalog: ReturnType<typeof imageCatalog>
      try {
        catalog = imageCatalog(db)
      } finally {
        db.close()
      }
      const { images, groups } = catalog
      if (g.json) {
        printJson(images)
        return
      }
      if (flags.tree) {
        for (const line of tree(images)) out(line)
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
          statusText(i),
        ])
      }
      for (const line of table(rows)) out(line)
      // sprawl at a glance: versions and bytes by status, and how many are in use
      out(
        style.dim(
          `${images.length} version(s): ${groups.map((v) => `${v.versions} ${v.group} (${formatBytes(v.bytes)})`).join(', ')}; \`grail gc --dry-run\` shows what gc would free`,
        ),
      )
    })
}

type Listed = ListedImage

function statusText(i: Listed): string {
  const base =
    i.status === 'active'
      ? i.status
      : style.yellow(`${i.status}${i.statusReason ? `: ${i.statusReason}` : ''}`)
  return i.outOfDate ? `${base} ${style.yellow(`(out of date: ${i.outOfDate})`)}` : base
}

/** Ancestry as an indented tree: roots (no parent in the catalog) first, children under their parent version. */
function tree(images: Listed[]): string[] {
  const byParent = new Map<string, Listed[]>()
  const digests = new Set(images.map((i) => i.digest))
  const roots: Listed[] = []
  for (const i of [...images].sort((a, b) =>
    a.name === b.name ? a.version - b.version : a.name < b.name ? -1 : 1,
  )) {
    if (i.parentDigest !== null && digests.has(i.parentDigest))
      byParent.set(i.parentDigest, [...(byParent.get(i.parentDigest) ?? []), i])
    else roots.push(i)
  }
  const lines: string[] = []
  const walk = (i: Listed, prefix: string, last: boolean, depth: number): void => {
    const branch = depth === 0 ? '' : last ? '└─ ' : '├─ '
    lines.push(
      `${prefix}${branch}${style.bold(`${i.name} v${i.version}`)} ${style.dim(shortDigest(i.digest))} ${statusText(i)}`,
    )
    const kids = byParent.get(i.digest) ?? []
    for (const [n, k] of kids.entries())
      walk(k, depth === 0 ? '' : `${prefix}${last ? '   ' : '│  '}`, n === kids.length - 1, depth + 1)
  }
  for (const r of roots) walk(r, '', true, 0)
  return lines
}

/** `grail revoke` and `grail unrevoke`. */
export function registerRevoke(program: Command, globals: () => GlobalOptions): void {
  program
    .command('revoke')
    .description(
      'pull an image version out of service: plan replaces what runs it, builds refuse it as a base',
    )
    .argument('<image>', 'IMAGE@VERSION, e.g. web@3')
    .requiredOption('--reason <text>', 'why: shown by `grail images` and in the plan')
    .option('--cascade', 'also revoke every image built on it')
    .action(async (ref: string, flags: { reason: string; cascade?: boolean }) => {
      const g = globals()
      const { openDb } = await import('../../state/index.js')
      const { revokeImages } = await import('../../lifecycle/revoke.js')
      const { runningIn } = await import('../../engine/images.js')
      const db = openDb(projectHome(g).db)
      try {
        const res = revokeImages(db, ref, flags.reason, flags.cascade === true)
        if (g.json) printJson(res)
        else {
          for (const r of res.revoked)
            out(`${style.yellow('revoked')} ${r.name}@${r.version} ${style.dim(shortDigest(r.digest))}`)
          if (res.children.length > 0)
            out(
              style.dim(
                `built on it and still active: ${res.children.map((c) => `${c.name}@${c.version}`).join(', ')} (--cascade revokes them too)`,
              ),
            )
          const where = runningIn(db, new Set(res.revoked.map((r) => r.digest)))
          if (where.length > 0) out(`running in: ${where.join(', ')}`)
          out(
            style.dim(
              '`grail apply ENV` replaces it in each environment (one that receives promotions with its newest promotion that is not revoked)',
            ),
          )
        }
      } finally {
        db.close()
      }
    })

  program
    .command('unrevoke')
    .description('undo a revocation')
    .argument('<image>', 'IMAGE@VERSION')
    .option('--cascade', 'also unrevoke every image built on it')
    .action(async (ref: string, flags: { cascade?: boolean }) => {
      const g = globals()
      const { openDb } = await import('../../state/index.js')
      const { unrevokeImages } = await import('../../lifecycle/revoke.js')
      const db = openDb(projectHome(g).db)
      try {
        const res = unrevokeImages(db, ref, flags.cascade === true)
        if (g.json) printJson(res)
        else for (const r of res.revoked) out(`${style.green('active again')} ${r.name}@${r.version}`)
      } finally {
        db.close()
      }
    })
}
