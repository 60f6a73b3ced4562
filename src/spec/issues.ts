/**
 * Turns zod issues into problems a person can act on: the key path, what was expected, what was found,
 * and a hint. Union failures are resolved to the branch the user evidently meant instead of listing
 * every branch ("union soup").
 */
import type { z } from 'zod'
import type { RawProblem } from './problems.js'
import type { IssueParams } from './schema-common.js'
import { allowedKeysAt, descriptionAt } from './schema-walk.js'
import { closest, didYouMean, listOr } from './suggest.js'

type Issue = z.core.$ZodIssue
/** a problem, and for a missing key its path (dropped when an unknown key was a typo of it) */
type Problem = RawProblem & { missing?: string }

interface Context {
  schema: z.core.$ZodType
  raw: unknown
  /** key paths some unknown key was taken for a typo of; no "missing key" problem for those */
  suggested: Set<string>
}

/** The value at `path` in the raw document, or undefined. */
export function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let cur = raw
  for (const seg of path) {
    if (typeof cur !== 'object' || cur === null) return undefined
    cur = (cur as Record<PropertyKey, unknown>)[seg]
  }
  return cur
}

/** How a found value reads in a message: `"three"`, `70000`, `a list`, `a mapping`. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing'
  if (v === null) return 'an empty value'
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list'
  if (typeof v === 'object') return Object.keys(v).length === 0 ? 'an empty mapping' : 'a mapping'
  return typeof v
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  record: 'a mapping',
}

function expectedPhrase(issue: Issue): string {
  if (issue.message.startsWith('expected ')) return issue.message
  if (issue.code === 'invalid_type') return `expected ${TYPE_WORDS[issue.expected] ?? issue.expected}`
  if (issue.code === 'invalid_value') return `expected one of ${listOr(issue.values.map(String))}`
  if (issue.code === 'too_small' || issue.code === 'too_big') {
    const small = issue.code === 'too_small'
    const bound = small ? issue.minimum : issue.maximum
    if (issue.origin === 'string' && small && bound === 1) return 'expected a non-empty string'
    if (issue.origin === 'array')
      return `expected ${small ? 'at least' : 'at most'} ${bound} item${bound === 1 ? '' : 's'}`
    return `expected a ${issue.origin} ${small ? '≥' : '≤'} ${bound}`
  }
  if (issue.code === 'invalid_format')
    return `expected a string in the format ${issue.pattern ?? issue.format}`
  return issue.message
}

/** An issue that says "this is not even the right type", at the spot of the union itself. */
function isTypeMismatch(issue: Issue): boolean {
  if (issue.path.length > 0) return false
  if (issue.code === 'invalid_type') return true
  return issue.code === 'invalid_union' && issue.errors.every((b) => b.some(isTypeMismatch))
}

/** Picks the union branch the user meant: right type, no missing keys, fewest unknown keys, fewest issues. */
function bestBranch(branches: Issue[][], value: unknown): Issue[] | undefined {
  const score = (b: Issue[]) => [
    b.filter((i) => i.code === 'invalid_type' && i.path.length > 0 && valueAt(value, i.path) === undefined)
      .length,
    b.filter((i) => i.code === 'unrecognized_keys' && i.path.length === 0).length,
    b.length,
  ]
  const compare = (a: number[], b: number[]) => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number)
    return 0
  }
  let best: Issue[] | undefined
  let bestScore: number[] = []
  for (const b of branches) {
    if (b.some(isTypeMismatch)) continue
    const s = score(b)
    if (!best || compare(s, bestScore) < 0) {
      best = b
      bestScore = s
    }
  }
  return best
}

function convert(issue: Issue, prefix: PropertyKey[], ctx: Context, out: Problem[]): void {
  const path = [...prefix, ...issue.path]
  const value = valueAt(ctx.raw, path)
  const params = (issue.code === 'custom' ? (issue.params ?? {}) : {}) as IssueParams
  switch (issue.code) {
    case 'invalid_union': {
      const branch = bestBranch(issue.errors, value)
      if (branch) {
        for (const i of branch) convert(i, path, ctx, out)
        return
      }
      const expected = issue.message.startsWith('expected ')
        ? issue.message
        : `expected ${listOr([...new Set(issue.errors.flat().map((i) => expectedPhrase(i).replace(/^expected /, '')))], false)}`
      out.push({ path, at: 'value', message: `${expected}, found ${describeValue(value)}` })
      return
    }
    case 'unrecognized_keys': {
      const present = Object.keys((value ?? {}) as object)
      const accepted = present.filter((k) => !issue.keys.includes(k))
      const allowed = allowedKeysAt(ctx.schema, path, accepted)
      for (const key of issue.keys) {
        const meant = closest(
          key,
          allowed.filter((k) => !present.includes(k)),
        )
        if (meant) ctx.suggested.add(JSON.stringify([...path, meant]))
        const hint = meant
          ? `did you mean "${meant}"?`
          : allowed.length
            ? `allowed here: ${allowed.join(', ')}`
            : undefined
        out.push({
          path: [...path, key],
          at: 'key',
          message: `unknown key "${key}"`,
          ...(hint ? { hint } : {}),
        })
      }
      return
    }
    case 'invalid_key': {
      const inner: RawProblem[] = []
      for (const i of issue.issues) convert(i as Issue, [], { ...ctx, raw: issue.input }, inner)
      for (const p of inner) out.push({ ...p, path, at: 'key' })
      return
    }
    case 'invalid_type':
      if (value === undefined && path.length > 0 && valueAt(ctx.raw, path.slice(0, -1)) !== undefined) {
        const key = String(path[path.length - 1])
        const about = descriptionAt(ctx.schema, path)
        out.push({
          path: path.slice(0, -1),
          at: 'key',
          missing: JSON.stringify(path),
          message: `missing required key "${key}"`,
          ...(about ? { hint: `${key}: ${about}` } : {}),
        })
        return
      }
      break
    default:
      break
  }
  const expected = expectedPhrase(issue)
  const message =
    expected.startsWith('expected ') && !expected.includes(', found ')
      ? `${expected}, found ${value === null && path.length === 0 ? 'an empty file' : describeValue(value)}`
      : expected
  let hint = params.hint
  if (!hint && issue.code === 'invalid_value') hint = didYouMean(String(value), issue.values.map(String))
  if (!hint && issue.code === 'invalid_type' && issue.expected === 'string' && typeof value === 'number') {
    hint = `quote it: "${value}"`
  }
  out.push({
    path,
    ...(params.key ? { pointPath: [...path, params.key] } : {}),
    at: params.at ?? 'value',
    message,
    ...(hint ? { hint } : {}),
  })
}

/**
 * Converts the issues of a failed `safeParse` into problems. `raw` is the parsed input (to show what was
 * found); `schema` is what it was parsed with (to list allowed keys and describe missing ones).
 */
export function problemsFromIssues(
  issues: readonly Issue[],
  schema: z.core.$ZodType,
  raw: unknown,
): RawProblem[] {
  const out: Problem[] = []
  const ctx: Context = { schema, raw, suggested: new Set() }
  for (const issue of issues) convert(issue, [], ctx, out)
  // `{prot: 80}` is one mistake (a typo of port), not also a missing port
  return out.filter((p) => !(p.missing && ctx.suggested.has(p.missing))).map(({ missing: _, ...p }) => p)
}
