import { readFile, stat } from 'node:fs/promises'
import { basename, extname, join, resolve } from 'node:path'
import { GrailError, isErrno } from '../errors.js'
import { problemsFromIssues } from './issues.js'
import { normaliseProject } from './normalise.js'
import type { RawProblem, SpecProblem } from './problems.js'
import { SpecInvalidError, displayFile, formatPath, sortProblems } from './problems.js'
import { checkReferences } from './references.js'
import { grailSchema } from './schema.js'
import type { Project } from './types.js'
import type { YamlSource } from './yaml-source.js'
import { readYaml } from './yaml-source.js'

/** Spec file names looked for in a directory, in this order. */
export const SPEC_FILE_NAMES = ['grail.yaml', 'grail.yml', 'grail.config.ts'] as const

const TS_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs']

export interface LoadOptions {
  /** environment to read SOURCE_DATE_EPOCH from (default: process.env) */
  env?: NodeJS.ProcessEnv
  /** directory file names in messages are relative to (default: process.cwd()) */
  cwd?: string
}

async function kindOf(path: string): Promise<'file' | 'dir' | undefined> {
  try {
    return (await stat(path)).isDirectory() ? 'dir' : 'file'
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined
    throw err
  }
}

/**
 * The spec file `pathOrDir` means: the file itself, or the one grail.yaml / grail.yml / grail.config.ts
 * in the directory. Fails with `NO_SPEC` (hint: `grail init`) when there is none, `SPEC_AMBIGUOUS` when
 * there are several.
 */
export async function findSpecFile(pathOrDir: string): Promise<string> {
  const path = resolve(pathOrDir)
  const kind = await kindOf(path)
  if (kind === 'file') return path
  if (kind === undefined) {
    throw new GrailError('NO_SPEC', `${pathOrDir} does not exist`, {
      hint: 'pass a directory with a grail.yaml, or the file itself',
    })
  }
  const found: string[] = []
  for (const name of SPEC_FILE_NAMES) if ((await kindOf(join(path, name))) === 'file') found.push(name)
  if (found.length === 0) {
    throw new GrailError('NO_SPEC', `no ${SPEC_FILE_NAMES.join(', ')} in ${path}`, {
      hint: 'run `grail init` to create a grail.yaml',
    })
  }
  if (found.length > 1) {
    throw new GrailError('SPEC_AMBIGUOUS', `${path} has both ${found.join(' and ')}`, {
      hint: 'keep one spec file per project',
    })
  }
  return join(path, found[0] as string)
}

/** SOURCE_DATE_EPOCH as an integer, or undefined when unset; anything else is an error, as the spec asks. */
export function sourceDateEpochFrom(env: NodeJS.ProcessEnv): number | undefined {
  const v = env.SOURCE_DATE_EPOCH
  if (v === undefined || v === '') return undefined
  if (!/^\d+$/.test(v)) {
    throw new GrailError(
      'SOURCE_DATE_EPOCH_INVALID',
      `SOURCE_DATE_EPOCH="${v}" is not a whole number of seconds`,
      {
        hint: 'set it to a Unix timestamp, e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct), or unset it',
      },
    )
  }
  return Number(v)
}

function place(problems: RawProblem[], shown: string, source: YamlSource | undefined): SpecProblem[] {
  return problems.map((p) => ({
    file: shown,
    ...(source ? source.locate(p.pointPath ?? p.path, p.at) : {}),
    path: formatPath(p.path),
    message: p.message,
    ...(p.hint ? { hint: p.hint } : {}),
  }))
}

/**
 * Validates a spec already read into a plain value (`raw`) and normalises it into a `Project`. With a
 * YAML source, problems carry line and column. Throws `SpecInvalidError` (code SPEC_INVALID) listing
 * every problem found.
 */
export function projectFromRaw(
  raw: unknown,
  file: string,
  opts: LoadOptions & { source?: YamlSource } = {},
): Project {
  const shown = displayFile(file, opts.cwd)
  const fail = (problems: RawProblem[]) =>
    new SpecInvalidError(shown, sortProblems(place(problems, shown, opts.source)))
  const parsed = grailSchema.safeParse(raw, { reportInput: true })
  const problems = [
    ...(parsed.success ? [] : problemsFromIssues(parsed.error.issues, grailSchema, raw)),
    ...checkReferences(raw),
  ]
  if (!parsed.success || problems.length > 0) throw fail(problems)
  const epoch = sourceDateEpochFrom(opts.env ?? process.env)
  const result = normaliseProject(parsed.data, {
    file,
    raw,
    ...(epoch === undefined ? {} : { sourceDateEpoch: epoch }),
  })
  if (result.problems.length > 0) throw fail(result.problems)
  return result.project
}

/** Parses grail.yaml text (syntax errors and invalid keys all reported with file:line:col). */
export function parseYamlSpec(text: string, file: string, opts: LoadOptions = {}): Project {
  const source = readYaml(text)
  if (source.errors.length > 0) {
    const shown = displayFile(file, opts.cwd)
    throw new SpecInvalidError(
      shown,
      sortProblems(source.errors.map((e) => ({ file: shown, path: '', ...e }))),
    )
  }
  return projectFromRaw(source.raw, file, { ...opts, source })
}

/**
 * Loads a project: `pathOrDir` is a spec file or a directory holding grail.yaml / grail.yml /
 * grail.config.ts. Relative host paths resolve against the spec's directory. Throws `GrailError`s:
 * NO_SPEC, SPEC_AMBIGUOUS, SPEC_INVALID (every problem, with file:line:col and key path), and
 * SOURCE_DATE_EPOCH_INVALID.
 */
export async function loadProject(pathOrDir: string, opts: LoadOptions = {}): Promise<Project> {
  const file = await findSpecFile(pathOrDir)
  const ext = extname(file)
  if (ext === '.yaml' || ext === '.yml') return parseYamlSpec(await readFile(file, 'utf8'), file, opts)
  if (TS_EXTENSIONS.includes(ext)) {
    // jiti (and its transpiler) is loaded only for TypeScript configs; YAML users never pay for it
    const { importConfig } = await import('./load-ts.js')
    return projectFromRaw(await importConfig(file, displayFile(file, opts.cwd)), file, opts)
  }
  throw new GrailError('SPEC_INVALID', `${basename(file)}: not a spec file (expected .yaml, .yml or .ts)`, {
    hint: `name it ${SPEC_FILE_NAMES.join(' or ')}`,
  })
}
