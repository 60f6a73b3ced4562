import { isAbsolute, relative } from 'node:path'
import { GrailError } from '../errors.js'

/** Where in the file a problem should point: the key, its value, or (for a missing key) the parent key. */
export type PointAt = 'key' | 'value'

/** A problem found in a spec, before it is placed in the file. */
export interface RawProblem {
  /** key path shown to the user */
  path: PropertyKey[]
  /** key path to point at in the file (default: `path`) */
  pointPath?: PropertyKey[]
  at: PointAt
  message: string
  hint?: string
}

/** One problem in a spec file, as reported to the user (and in `--json` output). */
export interface SpecProblem {
  /** the spec file, relative to the working directory when inside it */
  file: string
  /** 1-based; absent for grail.config.ts */
  line?: number
  column?: number
  /** key path such as `images.hello.steps[2]`; empty for the document itself */
  path: string
  message: string
  hint?: string
}

/** Thrown when a spec is invalid: code `SPEC_INVALID`, one detail line (plus hint) per problem. */
export class SpecInvalidError extends GrailError {
  readonly problems: readonly SpecProblem[]

  constructor(file: string, problems: readonly SpecProblem[]) {
    const n = problems.length
    super('SPEC_INVALID', `${file}: ${n} ${n === 1 ? 'problem' : 'problems'}`, {
      details: problems.map(formatProblem),
      hint:
        n === 1 && problems[0]?.hint
          ? problems[0].hint
          : 'fix the keys named above; every key is described in docs/spec.md and schema/grail.schema.json',
    })
    this.name = 'SpecInvalidError'
    this.problems = problems
  }
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$/

/** `images.hello.steps[2].copy`, `services.web.files["/etc/app.conf"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (IDENT.test(String(seg))) out += out === '' ? String(seg) : `.${String(seg)}`
    else out += `[${JSON.stringify(String(seg))}]`
  }
  return out
}

/** `grail.yaml:12:7  images.hello.steps[2]: unknown step "entrypiont"` + an indented hint line. */
export function formatProblem(p: SpecProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}:${p.column ?? 1}`
  const head = `${where}  ${p.path ? `${p.path}: ` : ''}${p.message}`
  return p.hint ? `${head}\n  hint: ${p.hint}` : head
}

/** The file name to show: relative to `cwd` when it is inside it, else absolute. */
export function displayFile(file: string, cwd = process.cwd()): string {
  const rel = relative(cwd, file)
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file
}

/** Problems in file order (then path order), duplicates dropped. */
export function sortProblems(problems: readonly SpecProblem[]): SpecProblem[] {
  const seen = new Set<string>()
  return [...problems]
    .sort(
      (a, b) =>
        (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0) || a.path.localeCompare(b.path),
    )
    .filter((p) => {
      const key = formatProblem(p)
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
}
