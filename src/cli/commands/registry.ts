import type { Command } from 'commander'
import { GrailError } from '../../errors.js'
import type { Db, ImageRecord } from '../../state/index.js'
import type { GlobalOptions } from '../project.js'
import { findSpecFile } from '../project.js'
import { out, printJson, shortDigest, style } from '../render.js'

/** `IMAGE`, `IMAGE@N` or `IMAGE@vN`. */
function parsePushArg(arg: string): { name: string; version?: number } {
  const m = /^([a-z0-9][a-z0-9-]{0,62})(?:[@:]v?(\d+))?$/.exec(arg)
  if (!m) {
    throw new GrailError('BAD_IMAGE_REF', `"${arg}" is not an image or an image version`, {
      hint: 'write NAME or NAME@VERSION, for example web or web@3 (see `grail images`)',
    })
  }
  return { name: m[1] as string, ...(m[2] !== undefined ? { version: Number(m[2]) } : {}) }
}

/** `grail push` and `grail pull`. */
export function registerRegistry(program: Command, globals: () => GlobalOptions): void {
  program
    .command('push')
    .description(
      "push image versions to the project's registry (default: every image of grail.yaml at the version grail.lock names, else its newest)",
    )
    .argument('[images...]', 'IMAGE or IMAGE@VERSION')
    .option('--env <env>', "push to this environment's registry instead of the project's")
    .action(async (args: string[], flags: { env?: string }) => {
      const g = globals()
      const [
        { loadProjectCached },
        { resolveHome },
        { openDb, listImages },
        { openStore },
        reg,
        { readLock },
      ] = await Promise.all([
        import('../load-project.js'),
        import('../../home.js'),
        import('../../state/index.js'),
        import('../../oci/store.js'),
        import('../../lifecycle/registry/index.js'),
        import('../../lifecycle/lock.js'),
      ])
      const project = await loadProjectCached(findSpecFile(g))
      if (flags.env !== undefined && !project.environments[flags.env]) {
        throw new GrailError('UNKNOWN_ENVIRONMENT', `${project.file}: no environment ${flags.env}`, {
          hint: `environments: ${Object.keys(project.environments).join(', ') || 'none'}`,
        })
      }
      const spec = reg.requireRegistry(project, flags.env)
      const home = resolveHome(project.dir)
      const db = openDb(home.db)
      try {
        const store = await openStore(home.oci, home.tmp)
        const lock = await readLock(project)
        const records = selectImages(listImages, db, project, lock, args)
        const registry = await reg.connectRegistry(spec)
        const pushed = await reg.pushImages(registry, store, db, records)
        if (g.json) printJson({ registry: spec.host, pushed })
        else
          for (const p of pushed) {
            out(
              `${style.green('pushed')} ${style.bold(p.name)} v${p.version}  ${p.reference}  ${style.dim(`${p.uploaded} uploaded, ${p.skipped} already there`)}`,
            )
          }
      } finally {
        db.close()
      }
    })

  program
    .command('pull')
    .description(
      'pull an image from a registry into the catalog (verified by digest), e.g. host:5000/team/web@sha256:…',
    )
    .argument('<ref>', 'HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]')
    .option(
      '--as <name>',
      "the image's name in the catalog (default: its Grail label, else the repository's last part)",
    )
    .action(async (refText: string, flags: { as?: string }) => {
      const g = globals()
      const [{ loadProjectCached }, { resolveHome }, { openDb }, { openStore }, reg, { parseReference }] =
        await Promise.all([
          import('../load-project.js'),
          import('../../home.js'),
          import('../../state/index.js'),
          import('../../oci/store.js'),
          import('../../lifecycle/registry/index.js'),
          import('../../oci/registry/index.js'),
        ])
      const ref = parseReference(refText)
      const project = await loadProjectCached(findSpecFile(g))
      const home = resolveHome(project.dir)
      const db = openDb(home.db)
      try {
        const store = await openStore(home.oci, home.tmp)
        const registry = await reg.connectRegistry(reg.registrySpecForHost(project, ref.registry))
        const pulled = await reg.pullIntoCatalog(
          registry,
          ref,
          { home, store, db },
          {
            ...(flags.as !== undefined ? { as: flags.as } : {}),
          },
        )
        if (g.json) printJson(pulled)
        else {
          const r = pulled.record
          const from = pulled.provenance
            ? style.dim(
                ` (built by Grail as ${pulled.provenance.image}${pulled.provenance.project ? ` of ${pulled.provenance.project}` : ''})`,
              )
            : ''
          out(
            pulled.created
              ? `${style.green('pulled')} ${style.bold(r.name)} v${r.version}  ${r.digest}${from}`
              : `${style.bold(r.name)} v${r.version} already in the catalog  ${shortDigest(r.digest)}`,
          )
        }
      } finally {
        db.close()
      }
    })
}

/**
 * What `grail push` pushes: the named versions; a name without a version is the version grail.lock names
 * when the catalog has it, else the newest active one. No names: every image of the spec.
 */
function selectImages(
  listImages: (db: Db, name: string) => ImageRecord[],
  db: Db,
  project: import('../../spec/types.js').Project,
  lock: import('../../lifecycle/lock-file.js').Lock | undefined,
  args: string[],
): ImageRecord[] {
  const wanted: Array<{ name: string; version?: number }> =
    args.length > 0 ? args.map(parsePushArg) : Object.keys(project.images).map((name) => ({ name }))
  const out: ImageRecord[] = []
  for (const w of wanted) {
    const versions = listImages(db, w.name)
    let rec: ImageRecord | undefined
    if (w.version !== undefined) rec = versions.find((v) => v.version === w.version)
    else {
      const locked = lock?.images[w.name]?.digest
      rec =
        (locked !== undefined ? versions.find((v) => v.digest === locked) : undefined) ??
        versions.find((v) => v.status === 'active')
    }
    if (!rec) {
      throw new GrailError(
        'UNKNOWN_IMAGE',
        `no image ${w.name}${w.version !== undefined ? `@${w.version}` : ''} in the catalog to push`,
        {
          hint: versions.length
            ? `versions of ${w.name}: ${versions.map((v) => `v${v.version}`).join(', ')}`
            : `build it first: grail build ${w.name}`,
        },
      )
    }
    if (rec.status === 'revoked') {
      throw new GrailError(
        'IMAGE_REVOKED',
        `${rec.name}@${rec.version} is revoked: ${rec.statusReason ?? ''}`,
        {
          hint: 'a revoked image is not pushed; push a newer version',
        },
      )
    }
    out.push(rec)
  }
  return out
}
