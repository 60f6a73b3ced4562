import { compileGlobs, type GlobMatcher } from './glob.js'

/** Env keys whose values count as secrets unless `policies.redact.keys` says otherwise (any case). */
export const DEFAULT_REDACT_KEYS = [
  '*PASSWORD*',
  '*PASSWD*',
  '*SECRET*',
  '*TOKEN*',
  '*CREDENTIAL*',
  '*PRIVATE_KEY*',
  '*API_KEY*',
  '*APIKEY*',
  '*ACCESS_KEY*',
] as const

/** What replaces a secret in stored and printed text. */
export const REDACTED = '[redacted]'

/**
 * Values shorter than this are not searched for in free text: replacing every "1" or "on" would
 * garble the text and tell a reader the value anyway. They are still hidden where they are shown as
 * values (status, plan), and caught by the key pattern in `KEY=value` text.
 */
export const MIN_REDACTED_LENGTH = 4

/** The secrets of a project: literal values, and the key pattern that makes `KEY=value` text secret. */
export interface Redactor {
  values: readonly string[]
  keys: GlobMatcher
}

/** A matcher of secret env keys: the globs compared case-insensitively. */
export function secretKeyMatcher(globs: readonly string[]): GlobMatcher {
  const upper = globs.map((g) => g.toUpperCase())
  // `*WORD*` globs (the defaults) are substring tests: compiling them with picomatch cost every command
  // that prints JSON ~1.5 ms
  const words = upper.map((g) => /^\*([A-Z0-9_]+)\*$/.exec(g)?.[1])
  // (a key with a slash is a path to the glob matcher, with its rules for `.` and `..` segments)
  let m: GlobMatcher | undefined
  const globbed = (key: string) => {
    m ??= compileGlobs(upper)
    return m(key.toUpperCase())
  }
  if (!words.every((w) => w !== undefined)) return globbed
  return (key) => {
    if (key.includes('/')) return globbed(key)
    const k = key.toUpperCase()
    return words.some((w) => k.includes(w as string))
  }
}

/** A redactor from literal secret values and key globs; short and duplicate values are dropped. */
export function makeRedactor(
  values: Iterable<string>,
  keyGlobs: readonly string[] = DEFAULT_REDACT_KEYS,
): Redactor {
  const set = new Set<string>()
  for (const v of values) if (v.length >= MIN_REDACTED_LENGTH) set.add(v)
  // longest first, so a value that contains another is replaced whole
  return { values: [...set].sort((a, b) => b.length - a.length), keys: secretKeyMatcher(keyGlobs) }
}

// NAME=value, NAME: value, "NAME": "value", with an optional quote around the value
const ASSIGNMENT = /(["']?)([A-Za-z_][A-Za-z0-9_.-]*)\1(\s*[=:]\s*)(["']?)([^\s"'`;&|,]+)/g
// what follows `NAME=` without being a value: a flag, a variable reference, an elision
const NOT_A_VALUE = /^(?:true|false|null|yes|no|\$.*|…|\.\.\.)$/i
const isValue = (key: string, value: string, r: Redactor): boolean =>
  r.keys(key) && value !== REDACTED && !NOT_A_VALUE.test(value.replace(/[)}\]]+$/, ''))
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g

/** `text` with every secret value, every value assigned to a secret key and every private key replaced. */
export function redactText(text: string, r: Redactor): string {
  let out = text
  for (const v of r.values) if (out.includes(v)) out = out.split(v).join(REDACTED)
  return redactAssignments(out, r).replace(PRIVATE_KEY, REDACTED)
}

/**
 * Every `KEY=value` / `KEY: value` whose key is a secret's, with the value replaced. An assignment to
 * another key does not hide one that follows it: in `failed: DB_PASSWORD=x`, `failed` takes
 * `DB_PASSWORD=x` as its value, so matching goes on right after `failed`.
 */
function redactAssignments(text: string, r: Redactor): string {
  const re = new RegExp(ASSIGNMENT.source, 'g')
  let out = ''
  let last = 0
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const [all, q1 = '', key = '', sep = '', q2 = '', value = ''] = m
    if (isValue(key, value, r)) {
      out += `${text.slice(last, m.index)}${q1}${key}${q1}${sep}${q2}${REDACTED}`
      last = m.index + all.length
    } else re.lastIndex = m.index + q1.length + key.length
  }
  return out + text.slice(last)
}

/**
 * A copy of a JSON-like value with `redactText` applied to every string in it (keys included), and the
 * string value of any key matching the secret key pattern replaced whole.
 */
export function redactValue<T>(value: T, r: Redactor): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactText(v, r)
    if (Array.isArray(v)) return v.map(walk)
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(
        Object.entries(v).map(([k, x]) => [
          redactText(k, r),
          typeof x === 'string' && r.keys(k) && x !== '' ? REDACTED : walk(x),
        ]),
      )
    }
    return v
  }
  return walk(value) as T
}

/**
 * Why `text` holds a secret, or undefined: a secret value (named by `names`, value → where it comes
 * from), a value assigned to a secret key (`DB_PASSWORD=`), or a private key.
 */
export function secretIn(
  text: string,
  r: Redactor,
  names: ReadonlyMap<string, string> = new Map(),
): string | undefined {
  for (const v of r.values) if (text.includes(v)) return names.get(v) ?? 'a secret value'
  for (const m of text.matchAll(ASSIGNMENT)) {
    if (isValue(m[2] as string, m[5] as string, r)) return `a value assigned to ${m[2]}`
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) return 'a private key'
  return undefined
}
