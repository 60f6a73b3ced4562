import { posix } from 'node:path'
import { z } from 'zod'
import {
  absolutePath,
  commandSchema,
  envMapSchema,
  integer,
  isPlainObject,
  portSchema,
  checkNoDotDot,
  report,
  scalarString,
} from './schema-common.js'
import { healthcheckSchema } from './schema-health.js'
import { didYouMean, listAnd, listOr } from './suggest.js'
import type { Step } from './types.js'

type Ctx = z.core.ParsePayload<unknown>

/** Copy sources stay inside the build context: relative, no `..`. */
function checkSource(ctx: Ctx, src: string, path: PropertyKey[]): void {
  if (src === '') report(ctx, 'expected a path in the build context, found an empty string', src, { path })
  else if (posix.isAbsolute(src)) {
    report(ctx, `copy sources are relative to the build context, found "${src}"`, src, {
      path,
      hint: `write "${src.replace(/^\/+/, '')}" (relative to the image's context), or set the image's \`context\``,
    })
  } else if (src.split('/').includes('..')) {
    report(ctx, `copy source "${src}" leaves the build context ("..")`, src, {
      path,
      hint: "copy only from inside the build context; set the image's `context` to a directory that contains it",
    })
  }
}

const OWNER_ERROR = 'expected a numeric owner "uid" or "uid:gid" (such as "1000:1000")'
const owner = z
  .union([integer('a uid ≥ 0', 0), z.string().regex(/^\d+(:\d+)?$/, { error: OWNER_ERROR })], {
    error: OWNER_ERROR,
  })
  .transform(String)

const MODE_ERROR = 'expected a file mode: an octal string such as "0644" or a number up to 0o7777'
const mode = z
  .union(
    [
      integer('a file mode up to 0o7777', 0, 0o7777),
      z.string().regex(/^(0o|0)?[0-7]{1,4}$/, { error: MODE_ERROR }),
    ],
    {
      error: MODE_ERROR,
    },
  )
  .transform((m) => (typeof m === 'number' ? m : Number.parseInt(m.replace(/^0o/, ''), 8)))

const copyObject = z.strictObject({
  from: z
    .union([z.string(), z.array(z.string()).min(1)], { error: 'expected a path or a list of paths' })
    .describe('Source path(s), relative to the build context; `..` is not allowed.'),
  to: absolutePath().describe(
    'Absolute destination in the image; a trailing `/` (or several sources) means "into".',
  ),
  owner: owner.optional().describe('Numeric `uid[:gid]` of the copied files. Default `0:0`.'),
  mode: mode
    .optional()
    .describe(
      'File mode, octal (`"0644"`, or 0644 in YAML). Default: 0644, or 0755 for executables and dirs.',
    ),
  exclude: z
    .array(z.string())
    .default([])
    .describe('Globs (relative to each source) left out. Default: none.'),
})

const copyStep = z
  .union([z.string(), copyObject], { error: 'expected "SRC... DEST" or a mapping with from and to' })
  .transform((c, ctx): Step => {
    if (typeof c === 'string') {
      const parts = c.trim().split(/\s+/)
      const to = parts.pop() ?? ''
      if (parts.length === 0) {
        report(ctx, `expected "SRC... DEST", found "${c}"`, c, { hint: 'for example copy: site/ /srv/www' })
      } else if (!to.startsWith('/')) {
        report(ctx, `copy destination must be an absolute path in the image, found "${to}"`, c, {
          hint: `write "${parts.join(' ')} /${to.replace(/^\.?\/*/, '')}"`,
        })
      } else checkNoDotDot(ctx as unknown as Ctx, to, 'copy destination')
      for (const src of parts) checkSource(ctx, src, [])
      return { kind: 'copy', from: parts, to, exclude: [] }
    }
    const from = typeof c.from === 'string' ? [c.from] : c.from
    for (const [i, src] of from.entries())
      checkSource(ctx, src, typeof c.from === 'string' ? ['from'] : ['from', i])
    return { kind: 'copy', from, to: c.to, exclude: c.exclude, ...optional({ owner: c.owner, mode: c.mode }) }
  })
  .describe('Copy files from the build context: `"SRC... DEST"` or `{from, to, owner, mode, exclude}`.')

function optional<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

const runObject = z.strictObject({
  command: commandSchema('a command').describe(
    'The command: a string (run with `/bin/sh -c`) or an argument list.',
  ),
  network: z.boolean().default(false).describe('Give the step network access. Default `false` (sandboxed).'),
  env: envMapSchema().default({}).describe('Extra environment for this step only.'),
})

const runStep = z
  .union([z.string().min(1), z.array(z.string()).min(1), runObject], {
    error: 'expected a command string, an argument list, or {command, network, env}',
  })
  .transform((r): Step => {
    if (typeof r === 'string') return { kind: 'run', argv: ['/bin/sh', '-c', r], network: false, env: {} }
    if (Array.isArray(r)) return { kind: 'run', argv: r, network: false, env: {} }
    return { kind: 'run', argv: r.command, network: r.network, env: r.env }
  })
  .describe('Run a command in the image, sandboxed (runc), network off unless `network: true`.')

const ARGV_ERROR = 'expected a command string (run with /bin/sh -c) or a list of arguments'
const argv = z
  .union([z.string().min(1), z.array(z.string())], { error: ARGV_ERROR })
  .transform((v) => (typeof v === 'string' ? ['/bin/sh', '-c', v] : v))

const EXPOSE_ERROR = 'expected a port such as 8080 or "8080/udp"'
const exposed = z
  .union([portSchema, z.string().regex(/^\d{1,5}(\/(tcp|udp))?$/, { error: EXPOSE_ERROR })], {
    error: EXPOSE_ERROR,
  })
  .transform((p, ctx): { port: number; protocol: 'tcp' | 'udp' } => {
    if (typeof p === 'number') return { port: p, protocol: 'tcp' }
    const [n, proto] = p.split('/')
    const port = Number(n)
    if (port < 1 || port > 65535) report(ctx, `expected a port number (1-65535), found ${port}`, p)
    return { port, protocol: proto === 'udp' ? 'udp' : 'tcp' }
  })

const USER_ERROR = 'expected a user such as "1000:1000" or "app"'

/** The step kinds, each normalising its own input to a `Step`. */
const STEP_SCHEMAS = {
  copy: copyStep,
  run: runStep,
  env: envMapSchema()
    .transform((env): Step => ({ kind: 'env', env }))
    .describe('Set environment variables in the image (`{KEY: value}`).'),
  user: z
    .union(
      [
        integer('a uid ≥ 0', 0),
        z.string().regex(/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/, { error: USER_ERROR }),
      ],
      {
        error: USER_ERROR,
      },
    )
    .transform((u): Step => ({ kind: 'user', user: String(u) }))
    .describe('User (and group) the process runs as: `"1000:1000"`, `"app"`.'),
  workdir: absolutePath()
    .transform((path): Step => ({ kind: 'workdir', path }))
    .describe('Working directory of the process (absolute).'),
  entrypoint: argv
    .transform((a): Step => ({ kind: 'entrypoint', argv: a }))
    .describe('Entrypoint: an argument list, or a string run with `/bin/sh -c`.'),
  cmd: argv
    .transform((a): Step => ({ kind: 'cmd', argv: a }))
    .describe('Default command (arguments to the entrypoint): a list, or a string run with `/bin/sh -c`.'),
  expose: z
    .union([exposed, z.array(exposed).min(1)], { error: EXPOSE_ERROR })
    .transform((p): Step => ({ kind: 'expose', ports: Array.isArray(p) ? p : [p] }))
    .describe('Ports the image listens on: `8080`, `"53/udp"`, or a list.'),
  volume: z
    .union([absolutePath(), z.array(absolutePath()).min(1)], {
      error: 'expected an absolute path or a list of them',
    })
    .transform((v): Step => ({ kind: 'volume', paths: Array.isArray(v) ? v : [v] }))
    .describe('Paths that hold mutable state (mounted from volumes, never part of drift).'),
  label: z
    .record(z.string().min(1), scalarString)
    .transform((labels): Step => ({ kind: 'label', labels }))
    .describe('OCI labels (`{key: value}`).'),
  healthcheck: healthcheckSchema
    .transform((check): Step => ({ kind: 'healthcheck', check }))
    .describe('Default health check of instances of this image (a service may override it).'),
}

type Kinds = typeof STEP_SCHEMAS
/** One step as written: a mapping with exactly one of the step kinds. */
export type StepInput = { [K in keyof Kinds]: { [P in K]: z.input<Kinds[K]> } }[keyof Kinds]

export const STEP_KINDS = Object.keys(STEP_SCHEMAS) as Array<keyof Kinds>

const OPTION_KEYS: Record<string, string[]> = {
  copy: Object.keys(copyObject.shape),
  run: Object.keys(runObject.shape),
}

function checkStepShape(raw: unknown, ctx: Ctx): void {
  if (!isPlainObject(raw)) return
  const keys = Object.keys(raw)
  const kinds: readonly string[] = STEP_KINDS
  if (keys.length === 0) {
    report(ctx, 'empty step: a step is a mapping with exactly one key', raw, {
      hint: `the step kinds are ${listOr(kinds)}`,
    })
  } else if (keys.length === 1) {
    const key = keys[0] as string
    if (kinds.includes(key)) return
    report(ctx, `unknown step "${key}"`, raw, {
      at: 'key',
      key,
      hint: didYouMean(key, kinds) ?? `the step kinds are ${listOr(kinds)}`,
    })
  } else {
    const known = keys.filter((k) => kinds.includes(k))
    const options = known.length === 1 ? OPTION_KEYS[known[0] as string] : undefined
    const nest = options && keys.every((k) => k === known[0] || options.includes(k))
    report(ctx, `a step has exactly one key, found ${keys.length}: ${listAnd(keys)}`, raw, {
      hint: nest
        ? `options go inside the step: ${known[0]}: {${keys.filter((k) => k !== known[0]).join(', ')}, ...}`
        : 'write each step as its own list item ("- ")',
    })
  }
}

const stepObject = z
  .strictObject(
    Object.fromEntries(Object.entries(STEP_SCHEMAS).map(([k, s]) => [k, s.optional()])) as {
      [K in keyof Kinds]: z.ZodOptional<Kinds[K]>
    },
    { error: `expected a step: a mapping with one key (${STEP_KINDS.join(', ')})` },
  )
  .meta({ minProperties: 1, maxProperties: 1 })

/** A build step: a mapping with exactly one key naming its kind, normalised to a `Step`. */
export const stepSchema = z
  .preprocess((raw: StepInput, ctx) => {
    checkStepShape(raw, ctx)
    return raw
  }, stepObject)
  .transform((s) => Object.values(s).find((v) => v !== undefined) as Step)
  .describe(`One build step: a mapping with exactly one of ${STEP_KINDS.map((k) => `\`${k}\``).join(', ')}.`)
