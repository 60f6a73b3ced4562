import type { IncomingMessage } from 'node:http'
import { GrailError } from '../../errors.js'

/** The largest request body the API reads: every write's body is a reason and a few keys. */
export const BODY_LIMIT = 64 * 1024

/**
 * Reads a request body as a JSON object: `Content-Type: application/json` (415 otherwise), at most
 * `limit` bytes (413, reading stops there), an object (400). An empty body is an empty object.
 */
export async function readJsonBody(
  req: IncomingMessage,
  limit = BODY_LIMIT,
): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? '0')
  if (declared > limit) throw tooLarge(limit)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) throw tooLarge(limit)
    chunks.push(chunk as Buffer)
  }
  if (size === 0 && req.headers['content-type'] === undefined) return {}
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/json') {
    throw new GrailError(
      'API_UNSUPPORTED_MEDIA_TYPE',
      `the request body is ${type ? `${type}` : 'of no declared type'}, not application/json`,
      { hint: 'send a JSON object with Content-Type: application/json' },
    )
  }
  const text = Buffer.concat(chunks).toString('utf8')
  let value: unknown
  try {
    value = text.trim() === '' ? {} : JSON.parse(text)
  } catch (err) {
    throw new GrailError('API_BAD_REQUEST', `the request body is not JSON: ${(err as Error).message}`, {
      hint: 'send a JSON object, e.g. {"reason": "…"}',
    })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GrailError('API_BAD_REQUEST', 'the request body is not a JSON object', {
      hint: 'send a JSON object, e.g. {"reason": "…"}',
    })
  }
  return value as Record<string, unknown>
}

function tooLarge(limit: number): GrailError {
  return new GrailError('API_BODY_TOO_LARGE', `the request body is over ${limit / 1024} KiB`, {
    hint: 'a write needs only a reason and a few keys',
  })
}

/** The keys a write's body may have, with their types; `reason` is always there and required. */
export type BodyShape = Record<
  string,
  { type: 'string' | 'boolean' | 'integer'; description: string; required?: boolean }
>

/**
 * Checks a write's body: `reason` a non-empty string, the required keys of `shape` there, every other
 * key one of `shape` with its type. A missing key, an unknown key or a wrong type is a 400 naming it.
 */
export function checkBody(body: Record<string, unknown>, shape: BodyShape): void {
  const reason = body.reason
  if (typeof reason !== 'string' || reason.trim() === '') {
    throw new GrailError(
      'API_BAD_REQUEST',
      reason === undefined ? 'the body has no "reason"' : '"reason" must be a non-empty string',
      { hint: 'every write says why: {"reason": "…"}; it goes into the event log' },
    )
  }
  for (const [key, want] of Object.entries(shape)) {
    if (want.required && body[key] === undefined)
      throw new GrailError('API_BAD_REQUEST', `the body has no "${key}" (${want.description})`, {
        hint: `add "${key}" to the body`,
      })
  }
  for (const [key, value] of Object.entries(body)) {
    if (key === 'reason') continue
    const want = shape[key]?.type
    if (want === undefined) {
      const keys = ['reason', ...Object.keys(shape)].map((k) => `"${k}"`).join(', ')
      throw new GrailError('API_BAD_REQUEST', `the body has an unknown key ${JSON.stringify(key)}`, {
        hint: `this write takes ${keys}`,
      })
    }
    const ok =
      want === 'integer'
        ? typeof value === 'number' && Number.isInteger(value) && value > 0
        : want === 'string'
          ? typeof value === 'string' && value !== ''
          : typeof value === want
    if (!ok) {
      throw new GrailError(
        'API_BAD_REQUEST',
        `"${key}" must be ${want === 'integer' ? 'a whole number above 0' : want === 'string' ? 'a non-empty string' : 'true or false'}`,
        { hint: 'see /api/openapi.json for the body of this write' },
      )
    }
  }
}
