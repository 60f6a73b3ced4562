/**
 * Every code a `GrailError` carries: stable, for scripts (`--json` prints it), and listed with its
 * meaning and usual fix in docs/cli.md ("Error codes"; errors.test.ts keeps the two equal). A new code
 * goes here and into that table.
 */
export const ERROR_CODES = [
  // spec and command line
  'NO_SPEC',
  'SPEC_AMBIGUOUS',
  'SPEC_INVALID',
  'SPEC_EXISTS',
  'SPEC_NOT_EDITABLE',
  'SOURCE_DATE_EPOCH_INVALID',
  'UNKNOWN_ENVIRONMENT',
  'UNKNOWN_IMAGE',
  'UNKNOWN_SERVICE',
  'PROVIDER_UNAVAILABLE',
  'BAD_DURATION',
  'BAD_SINCE',
  'BAD_IMAGE_REF',
  'BAD_DIGEST',
  'BAD_NAME',
  'BAD_PATH',
  'BAD_INSTANCE_ID',
  'BAD_HOME_PATH',
  'RESOURCE_UNSUPPORTED',
  'UNSUPPORTED_ARCH',
  'TOOL_MISSING',
  // building
  'BASE_NOT_FOUND',
  'BASE_INVALID',
  'BASE_REVOKED',
  'IMAGE_CYCLE',
  'COPY_SOURCE_MISSING',
  'COPY_OUTSIDE_CONTEXT',
  'COPY_UNSUPPORTED',
  'BAD_OWNER',
  'UNKNOWN_USER',
  'UNKNOWN_GROUP',
  'RUN_FAILED',
  'NOT_REPRODUCIBLE',
  'LAYER_SOURCE_CHANGED',
  'UNSAFE_BASE',
  'UNSAFE_TAR',
  'BAD_TAR',
  // the Debian archive (grail outdated, policies.patch)
  'ARCHIVE_UNREACHABLE',
  'ARCHIVE_UNTRUSTED',
  'ARCHIVE_INVALID',
  'ARCHIVE_HASH_MISMATCH',
  'COMMAND_FAILED',
  'DISK_FULL',
  // images, store and lock
  'BLOB_MISSING',
  'BLOB_CORRUPT',
  'DIGEST_MISMATCH',
  'IMAGE_MISSING',
  'IMAGE_NOT_BUILT',
  'IMAGE_NOT_FOUND',
  'IMAGE_REVOKED',
  'BUILD_NEEDED',
  'LOCK_MISSING',
  'LOCK_INVALID',
  'LOCK_TOO_NEW',
  'LOCK_MISMATCH',
  'LOCK_IMAGE_MISSING',
  'LOCK_IMAGE_REVOKED',
  'REVOKE_NO_REASON',
  'GC_INCOMPLETE',
  // registries
  'REGISTRY_NOT_CONFIGURED',
  'REGISTRY_REF_INVALID',
  'REGISTRY_INSECURE',
  'REGISTRY_TLS',
  'REGISTRY_CREDENTIALS',
  'REGISTRY_AUTH',
  'REGISTRY_UNREACHABLE',
  'REGISTRY_NOT_FOUND',
  'REGISTRY_ERROR',
  'REGISTRY_DELETE_DISABLED',
  'REGISTRY_NO_PLATFORM',
  // deploying and operating
  'LOCKED',
  'BAD_LISTEN',
  'ROLLED_BACK',
  'ROLLBACK_FAILED',
  'REPLACEMENT_FAILED',
  'REVOKED_NO_REPLACEMENT',
  'NO_SUCH_RELEASE',
  'RELEASE_REVOKED',
  'NOTHING_TO_PROMOTE',
  'PROMOTE_SAME_ENV',
  'PROMOTE_REVOKED',
  'DOWN_INCOMPLETE',
  'RESET_NEEDS_FORCE',
  'NO_COMMAND',
  'INSTANCE_EXISTS',
  'INSTANCE_NOT_FOUND',
  'INSTANCE_NOT_READY',
  'INSTANCE_PATH_NOT_FOUND',
  'INSTANCE_PATH_NOT_FILE',
  'NETWORK_EXHAUSTED',
  'NETWORK_FAILED',
  'NO_FREE_PORT',
  'STILL_MOUNTED',
  'BAD_STATE',
  // drift, hotfix and capture
  'DAMAGED',
  'HOTFIX_NO_COMMAND',
  'HOTFIX_NO_REASON',
  'HOTFIX_TTL',
  'HOTFIX_FAILED',
  'NOTHING_TO_CAPTURE',
  'CAPTURE_SECRET',
  'CAPTURE_UNSAFE',
  'CAPTURE_UNSUPPORTED',
  // state
  'STATE_DAMAGED',
  'STATE_MISSING',
  'STATE_TOO_NEW',
  'STATE_BUSY',
  'STATE_UNREADABLE',
  // API and tokens
  'TOKEN_EXISTS',
  'TOKEN_NOT_FOUND',
  'BAD_TOKEN_SCOPE',
  'API_UNAUTHORIZED',
  'API_FORBIDDEN',
  'API_BAD_REQUEST',
  'API_BODY_TOO_LARGE',
  'API_UNSUPPORTED_MEDIA_TYPE',
  'API_NOT_FOUND',
  'API_METHOD_NOT_ALLOWED',
  'API_INSECURE_READ',
  'API_LISTEN',
  'API_TLS',
  // proxy
  'PROXY_LISTEN',
  'PROXY_PORT',
  'PROXY_PORT_IN_USE',
  'PROXY_START',
  'PROXY_TLS',
  'PROXY_BAD_STATE',
  'PROXY_BAD_BACKENDS',
  'PROXY_CONTROL',
  'PROXY_CONTROL_BODY',
  'PROXY_CONTROL_IN_USE',
  'PROXY_DAEMON_USAGE',
  'ENGINE_UNREACHABLE',
  'ENGINE_TLS',
  'ENGINE_TOO_OLD',
  'ENGINE_ERROR',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES)

/** True when `code` is one of Grail's error codes (e.g. one a proxy daemon sent back). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && KNOWN.has(code)
}

/**
 * Two tiers of errors. A `GrailError` is the user's to fix: it carries a stable code, a message that names
 * the file, key or instance involved, and a hint. Anything else is a bug and is reported with its stack.
 */
export class GrailError extends Error {
  readonly code: ErrorCode
  readonly hint: string | undefined
  readonly details: readonly string[]

  constructor(
    code: ErrorCode,
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
