import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { GrailError } from '../errors.js'
import type { GrailHome } from '../home.js'
import { resolveHome } from '../home.js'

/** Same names as the spec loader's; repeated here so `grail images` starts without loading the schema. */
export const SPEC_FILES = ['grail.yaml', 'grail.yml', 'grail.config.ts']

export interface GlobalOptions {
  chdir?: string
  file?: string
  json?: boolean
  /** print env values, deploy-file contents and secrets instead of hiding them */
  showValues?: boolean
}

/**
 * What a command loads: the `--file`, else the nearest directory (this one or a parent) that holds a spec
 * file; the spec loader then picks the file in it (and refuses a directory with two).
 */
export function findSpecFile(opts: GlobalOptions): string {
  if (opts.file) return resolve(opts.chdir ?? '.', opts.file)
  let dir = resolve(opts.chdir ?? '.')
  for (;;) {
    if (SPEC_FILES.some((name) => existsSync(join(dir, name)))) return dir
    const parent = dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  throw new GrailError(
    'NO_SPEC',
    `no grail.yaml (or grail.config.ts) in ${resolve(opts.chdir ?? '.')} or its parents`,
    {
      hint: 'run `grail init` to create one, or pass -C DIR / --file FILE',
    },
  )
}

/** The home of the project whose spec `findSpecFile` finds. */
export function projectHome(opts: GlobalOptions): GrailHome {
  return resolveHome(opts.file ? dirname(findSpecFile(opts)) : findSpecFile(opts))
}
