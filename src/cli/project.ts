import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { GrailError } from '../errors.js'
import type { GrailHome } from '../home.js'
import { resolveHome } from '../home.js'

export const SPEC_FILES = ['grail.yaml', 'grail.yml', 'grail.config.ts']

export interface GlobalOptions {
  chdir?: string
  file?: string
  json?: boolean
}

/** The spec file a command works on: `--file`, else the first spec file in the directory or its parents. */
export function findSpecFile(opts: GlobalOptions): string {
  if (opts.file) return resolve(opts.chdir ?? '.', opts.file)
  let dir = resolve(opts.chdir ?? '.')
  for (;;) {
    for (const name of SPEC_FILES) if (existsSync(join(dir, name))) return join(dir, name)
    const parent = dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  throw new GrailError('NO_SPEC', `no grail.yaml (or grail.config.ts) in ${resolve(opts.chdir ?? '.')} or its parents`, {
    hint: 'run `grail init` to create one, or pass -C DIR / --file FILE',
  })
}

/** The home of the project whose spec `findSpecFile` finds. */
export function projectHome(opts: GlobalOptions): GrailHome {
  return resolveHome(dirname(findSpecFile(opts)))
}
