/**
 * Building blocks shared by the grail.yaml schema. Every schema states what it expects in the form
 * "expected <what>", which the error formatter completes with ", found <value>"; a custom issue may carry
 * `params` (see `IssueParams`) with a hint and where in the file it should point.
 */
import { posix } from 'node:path'
import { z } from 'zod'
import { DURATION_PATTERN, parseDuration } from './duration.js'
import { didYouMean, listAnd, listOr } from './suggest.js'

/** Extra data a custom issue carries to the error formatter. */
export interface IssueParams {
  hint?: string
  /** point at the key or at the value (default) */
  at?: 'key' | 'value'
  /** with `at: 'key'`: the key of the mapping at the issue's path to point at */
  key?: string
}

/** Names reach paths, labels and argv, so they are restricted to a safe alphabet. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/
const NAME_EXPECTED =
  'expected a name of lowercase letters, digits and "-" (starting with a letter or digit, at most 63)'

type Ctx = z.core.ParsePayload<unknown>

/** Adds a custom issue with a complete message and optional hint / position to a zod context. */
export function report(
  ctx: Ctx,
  message: string,
  input: unknown,
  params: IssueParams & { path?: PropertyKey[] } = {},
) {
  const { path, ...rest } = params
  ctx.issues.push({ code: 'custom', message, input, params: rest, ...(path ? { path } : {}) })
}

/** A lowercase slug close to `input`, offered when a name breaks the rule. */
export function slugify(input: string): string {
  return input
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
}

/** The longest name: a DNS label, so a name can become a hostname or a label on any provider. */
export const NAME_MAX = 63

/**
 * Service names may not start with this: an instance id begins with its service's name, and Grail's
 * build sandboxes (src/build/run-step.ts) share the runc root under ids starting `grail-b-`, which the
 * stale-build cleaner deletes.
 */
export const RESERVED_SERVICE_PREFIX = 'grail-b-'

function checkName(ctx: Ctx): void {
  if (NAME_PATTERN.test(ctx.value as string)) return
  const value = ctx.value as string
  const slug = slugify(value)
  const hint = NAME_PATTERN.test(slug) ? `try "${slug}"` : 'use lowercase letters, digits and "-"'
  if (value.length > NAME_MAX && NAME_PATTERN.test(value.slice(0, NAME_MAX))) {
    report(ctx, `a name is at most ${NAME_MAX} characters, this one has ${value.length}`, value, { hint })
    return
  }
  report(ctx, NAME_EXPECTED, value, { hint })
}

/** A project, image, service, environment or volume name: `^[a-z0-9][a-z0-9-]{0,62}$`. */
export function nameSchema(what: string) {
  return z
    .string({ error: `expected ${what}` })
    .check((ctx) => checkName(ctx as Ctx))
    .meta({ pattern: NAME_PATTERN.source })
}

/** A service name: a name that does not start Grail's reserved `grail-b-` (see RESERVED_SERVICE_PREFIX). */
export function serviceNameSchema(what: string) {
  return z
    .string({ error: `expected ${what}` })
    .check((ctx) => {
      checkName(ctx as Ctx)
      if (`${ctx.value}-`.startsWith(RESERVED_SERVICE_PREFIX)) {
        report(
          ctx,
          `a service name may not start with "${RESERVED_SERVICE_PREFIX.slice(0, -1)}": Grail's build sandboxes use that prefix`,
          ctx.value,
          { hint: `rename the service, e.g. "${ctx.value.replace(/^grail-b/, 'svc')}"` },
        )
      }
    })
    .meta({ pattern: `^(?!grail-b(-|$))${NAME_PATTERN.source.slice(1)}` })
}

/** A whole number in [min, max], with one "expected" phrase for every way it can be wrong. */
export function integer(expected: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  const error = `expected ${expected}`
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error })
}

/** A TCP/UDP port number, 1-65535. */
export const portSchema = integer('a port number (1-65535)', 1, 65535)

/**
 * A path inside the image or instance that climbs with `..` is refused: it would name a place above
 * the root that the image or instance cannot have. Reports it with the normalised path as the hint.
 */
export function checkNoDotDot(ctx: Ctx, path: string, what: string): boolean {
  if (!path.split('/').includes('..')) return true
  report(ctx, `${what} "${path}" climbs out with ".."`, path, {
    hint: `write the path without "..", e.g. "${posix.normalize(path)}"`,
  })
  return false
}

/** An absolute POSIX path inside the image or instance, without `..`. */
export function absolutePath(what = 'an absolute path (starting with "/")') {
  return z
    .string({ error: `expected ${what}` })
    .check((ctx) => {
      if (ctx.value.startsWith('/')) {
        checkNoDotDot(ctx as Ctx, ctx.value, 'the path')
        return
      }
      report(ctx, `expected ${what}`, ctx.value, {
        hint: `write "/${ctx.value.replace(/^\.?\/*/, '')}"`,
      })
    })
    .meta({ pattern: '^/' })
}

/** A duration: `500ms`, `2s`, `10m`, `1h30m`, `7d`, or a number of milliseconds; parsed to ms. */
export function durationSchema() {
  const error = 'expected a duration like 500ms, 2s, 10m, 1h30m or 7d (or a number of milliseconds)'
  return z
    .union(
      [
        z.number({ error }).int({ error }).min(0, { error }),
        z.string({ error }).regex(DURATION_PATTERN, { error }),
      ],
      {
        error,
      },
    )
    .transform((v) => parseDuration(v) as number)
}

/** A scalar that becomes a string: env values and labels (`PORT: 8080`, `DEBUG: true`). */
const SCALAR = 'expected a string, number or boolean'
export const scalarString = z
  .union([z.string({ error: SCALAR }), z.number({ error: SCALAR }), z.boolean({ error: SCALAR })], {
    error: SCALAR,
  })
  .transform((v) => String(v))

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Environment variables: NAME → string (numbers and booleans are turned into strings). */
export function envMapSchema() {
  const key = z.string().regex(ENV_NAME, {
    error: 'expected an environment variable name (letters, digits, "_"; not starting with a digit)',
  })
  return z.record(key, scalarString)
}

/** A command: a string runs through `/bin/sh -c`, a list is exec'd as is. */
export function commandSchema(what: string) {
  const error = `expected ${what}: a string (run with /bin/sh -c) or a non-empty list of arguments`
  return z
    .union([z.string({ error }).min(1, { error }), z.array(z.string(), { error }).min(1, { error })], {
      error,
    })
    .transform((v): string[] => (typeof v === 'string' ? ['/bin/sh', '-c', v] : v))
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Checks that a mapping holds exactly one of `kinds` (a base source, a probe): none, or two, is reported
 * as one clear problem instead of every branch of a union failing. Non-mappings are left to the schema.
 */
export function checkExactlyOne(ctx: Ctx, raw: unknown, kinds: readonly string[], noun: string): void {
  if (!isPlainObject(raw)) return
  const keys = Object.keys(raw)
  const present = keys.filter((k) => kinds.includes(k))
  if (present.length === 1) return
  if (present.length === 0) {
    const unknown = keys.find((k) => didYouMean(k, kinds))
    report(
      ctx,
      `${noun} needs exactly one of ${listOr(kinds)}, found ${keys.length ? listOr(keys) : 'none'}`,
      raw,
      {
        hint: unknown ? didYouMean(unknown, kinds) : `for example {${kinds[0]}: ...}`,
      },
    )
    return
  }
  report(
    ctx,
    `${noun} has exactly one of ${listOr(kinds)}, found ${present.length}: ${listAnd(present)}`,
    raw,
    {
      hint: `keep one of ${listOr(present)}`,
    },
  )
}

export { isPlainObject }
