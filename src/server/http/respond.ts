import type { ServerResponse } from 'node:http'
import { type ErrorCode, GrailError } from '../../errors.js'

/**
 * Headers on every response: the dashboard may load only its own files (CSP), browsers may not guess
 * content types or frame the pages. No CORS header is ever sent: other origins cannot read the API.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
}

/** The HTTP status of a user error: the ones a client acts on differently, else 400. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  API_UNAUTHORIZED: 401,
  API_FORBIDDEN: 403,
  API_NOT_FOUND: 404,
  UNKNOWN_ENVIRONMENT: 404,
  UNKNOWN_SERVICE: 404,
  UNKNOWN_IMAGE: 404,
  NO_SUCH_RELEASE: 404,
  INSTANCE_NOT_FOUND: 404,
  API_METHOD_NOT_ALLOWED: 405,
  LOCKED: 409,
  API_BODY_TOO_LARGE: 413,
  API_UNSUPPORTED_MEDIA_TYPE: 415,
}

/** The status an error is answered with: its code's, 400 for another user error, 500 for a bug. */
export function statusOf(err: unknown): number {
  return err instanceof GrailError ? (STATUS[err.code] ?? 400) : 500
}

/** An error as the API answers it: the same object `--json` prints on stderr (no stack for a bug). */
export function errorBody(err: unknown): { error: Record<string, unknown> } {
  if (err instanceof GrailError)
    return {
      error: {
        code: err.code,
        message: err.message,
        ...(err.hint === undefined ? {} : { hint: err.hint }),
        ...(err.details.length > 0 ? { details: err.details } : {}),
      },
    }
  return {
    error: {
      code: 'INTERNAL',
      message: 'internal error: see the log of grail serve',
      note: 'This is a bug in Grail; please report it with the request you sent and the log line.',
    },
  }
}

/** Writes a JSON response with the security headers. */
export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = `${JSON.stringify(value)}\n`
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    ...headers,
  })
  res.end(body)
}

/** Answers an error: status by code, body as `--json` errors, `WWW-Authenticate` on a 401. */
export function sendError(res: ServerResponse, err: unknown): void {
  const status = statusOf(err)
  const headers: Record<string, string> = status === 401 ? { 'WWW-Authenticate': 'Bearer realm="grail"' } : {}
  if (err instanceof GrailError && err.code === 'API_METHOD_NOT_ALLOWED' && err.details.length > 0)
    headers.Allow = err.details.join(', ')
  // the rest of a body too large to read is not read: the connection cannot carry another request
  if (status === 413) headers.Connection = 'close'
  if (res.headersSent) {
    // a stream that already started cannot change its status: it ends
    res.destroy()
    return
  }
  sendJson(res, status, errorBody(err), headers)
}
