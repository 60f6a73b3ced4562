/**
 * Two tiers of errors. A `GrailError` is the user's to fix: it carries a stable code, a message that names
 * the file, key or instance involved, and a hint. Anything else is a bug and is reported with its stack.
 */
export class GrailError extends Error {
  readonly code: string
  readonly hint: string | undefined
  readonly details: readonly string[]

  constructor(
    code: string,
    message: string,
    opts: { hint?: string; details?: readonly string[]; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'GrailError'
    this.code = code
    this.hint = opts.hint
    this.details = opts.details ?? []
  }
}

/** True when `err` is a Node system error with the given code (`ENOENT`, `EEXIST`, ...). */
export function isErrno(err: unknown, code: string): err is NodeJS.ErrnoException {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code
}
