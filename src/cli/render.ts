import { GrailError } from '../errors.js'
import { concealBundle } from '../plan/secrets.js'
import { makeRedactor, type Redactor, redactText, redactValue } from '../util/redact.js'

/** Exit codes every command shares. */
export const EXIT = { ok: 0, user: 1, pending: 2, internal: 3 } as const

const useColor = () => !process.env.NO_COLOR && process.stdout.isTTY === true

function paint(code: number, s: string): string {
  return useColor() ? `\u001b[${code}m${s}\u001b[0m` : s
}

export const style = {
  bold: (s: string) => paint(1, s),
  dim: (s: string) => paint(2, s),
  red: (s: string) => paint(31, s),
  green: (s: string) => paint(32, s),
  yellow: (s: string) => paint(33, s),
  cyan: (s: string) => paint(36, s),
}

/**
 * How output treats secrets: redacted with the project's redactor and release configs shown as keys
 * only, unless the user asked for `--show-values` (then `redactor` is undefined and `conceal` false).
 */
let outputPolicy: { redactor: Redactor | undefined; conceal: boolean } = {
  redactor: makeRedactor([]),
  conceal: true,
}

/** Sets how output treats secrets; commands call it once the project's secrets are known. */
export function setOutputSecrets(redactor: Redactor, showValues: boolean): void {
  outputPolicy = showValues ? { redactor: undefined, conceal: false } : { redactor, conceal: true }
}

/** `text` as output may show it: with the secrets redacted unless `--show-values`. */
export function shown(text: string): string {
  return outputPolicy.redactor ? redactText(text, outputPolicy.redactor) : text
}

/** Writes a line to stdout. The engine never prints; commands do it through here. */
export function out(line = ''): void {
  process.stdout.write(`${shown(line)}\n`)
}

/** Release configs (any `config` holding `env`) shown as keys, then every string redacted. */
function forOutput(value: unknown): unknown {
  if (!outputPolicy.conceal) return value
  const walk = (v: unknown, key: string | undefined): unknown => {
    if (key === 'config') return concealBundle(v)
    if (Array.isArray(v)) return v.map((x) => walk(x, undefined))
    if (v !== null && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]))
    return v
  }
  const concealed = walk(JSON.parse(JSON.stringify(value ?? null)) as unknown, undefined)
  return outputPolicy.redactor ? redactValue(concealed, outputPolicy.redactor) : concealed
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(forOutput(value), null, 2)}\n`)
}

/** Aligned columns for human output. */
export function table(rows: string[][]): string[] {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes to measure width
  const plain = (s: string) => s.replace(/\u001b\[\d+m/g, '')
  const widths: number[] = []
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, plain(cell).length)
  }
  return rows.map((row) =>
    row
      .map((cell, i) =>
        i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - plain(cell).length),
      )
      .join('  ')
      .trimEnd(),
  )
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`
}

/** How long ago an ISO time was, coarsely: `42s`, `5m`, `3h`, `2d`. */
export function formatAge(iso: string): string {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000)
  if (s < 60) return `${Math.floor(s)}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86400) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86400)}d`
}

export function shortDigest(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12)
}

/** An error as it may be shown: a user error's texts and an internal error's stack redacted. */
function withoutSecrets(err: unknown): unknown {
  if (!outputPolicy.redactor) return err
  if (err instanceof GrailError) {
    const hint = err.hint === undefined ? {} : { hint: shown(err.hint) }
    return new GrailError(err.code, shown(err.message), { ...hint, details: err.details.map(shown) })
  }
  if (err instanceof Error) {
    const copy = new Error(shown(err.message))
    copy.stack = shown(err.stack ?? err.message)
    // the code (ENOSPC, SQLITE_CORRUPT) decides whether it is a user error
    const code = (err as { code?: unknown }).code
    if (typeof code === 'string') Object.assign(copy, { code })
    return copy
  }
  return shown(String(err))
}

/**
 * A reader that goes away (`grail status | head -1`) closes the pipe: the rest of the output has nowhere
 * to go, but the command still finishes what it does (an apply must not stop half-way because its
 * output is no longer read), so a closed stdout or stderr is ignored instead of crashing the process.
 */
export function ignoreClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return
      throw err
    })
  }
}

function writeJsonError(error: Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify({ error })}\n`)
}

/** The state database is damaged past what the open-time check saw: a user error, not a bug. */
function corruption(err: unknown): GrailError | undefined {
  const code = (err as { code?: unknown } | null)?.code
  if (!(err instanceof Error) || typeof code !== 'string') return undefined
  if (!code.startsWith('SQLITE_CORRUPT') && code !== 'SQLITE_NOTADB') return undefined
  return new GrailError('STATE_DAMAGED', `the state database (.grail/state.db) is damaged: ${err.message}`, {
    hint: 'restore it from a backup, or run `grail state reset --force` to start over (images are kept)',
  })
}

/** A full disk or quota is the machine's state, not a bug: a user error with what frees space. */
function diskFull(err: unknown): GrailError | undefined {
  const code = (err as { code?: unknown } | null)?.code
  if (!(err instanceof Error) || !['ENOSPC', 'EDQUOT', 'SQLITE_FULL'].includes(String(code))) return undefined
  return new GrailError('DISK_FULL', `the disk is full: ${err.message}`, {
    hint: 'free space on the filesystem that holds .grail (`df -h .grail`): `grail gc --dry-run` shows what garbage collection would free, `grail images` the image sizes',
  })
}

/**
 * Maps any error to an exit code and a message on stderr: a user error shows its message, details and
 * hint (no stack); anything else is a bug and shows its stack. With `json`, either is one JSON object.
 */
export function reportError(thrown: unknown, json: boolean): number {
  const err = withoutSecrets(thrown)
  const user = err instanceof GrailError ? err : (corruption(err) ?? diskFull(err))
  if (user) {
    if (json) {
      writeJsonError({ code: user.code, message: user.message, details: user.details, hint: user.hint })
    } else {
      process.stderr.write(`${style.red('error')}: ${user.message}\n`)
      for (const d of user.details) process.stderr.write(`${d.replace(/^/gm, '  ')}\n`)
      if (user.hint) process.stderr.write(`${style.dim('hint')}: ${user.hint}\n`)
    }
    return EXIT.user
  }
  const e = err instanceof Error ? err : new Error(String(err))
  const note = 'This is a bug in Grail; please report it with the command you ran.'
  if (json) {
    writeJsonError({ code: 'INTERNAL', message: e.message, stack: e.stack ?? e.message, note })
    return EXIT.internal
  }
  process.stderr.write(`${style.red('internal error')}: ${e.stack ?? e.message}\n`)
  process.stderr.write(`${note}\n`)
  return EXIT.internal
}
