import { readToken } from './tokens.js'

/** Where the API lives, relative to the page (the dashboard is served by `grail serve` at `/`). */
export const API = '/api/v1'

/** An error the API answered with (`{error: {code, message, hint}}`), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint: string | undefined,
  ) {
    super(message)
  }
}

/** `/api/v1/a/b` from path segments, each one percent-encoded (names come from the API, not from code). */
export function apiPath(...segments: Array<string | number>): string {
  return `${API}/${segments.map((s) => encodeURIComponent(String(s))).join('/')}`
}

async function errorOf(res: Response): Promise<ApiError> {
  let body: unknown
  try {
    body = await res.json()
  } catch {
    body = undefined
  }
  const e = (body as { error?: { code?: unknown; message?: unknown; hint?: unknown } } | undefined)?.error
  return new ApiError(
    res.status,
    typeof e?.code === 'string' ? e.code : `HTTP_${res.status}`,
    typeof e?.message === 'string' ? e.message : `${res.status} ${res.statusText}`,
    typeof e?.hint === 'string' ? e.hint : undefined,
  )
}

async function send(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, cache: 'no-store', credentials: 'omit' })
  } catch (err) {
    throw new ApiError(0, 'UNREACHABLE', `grail serve did not answer: ${String(err)}`, 'is it still running?')
  }
}

/** GETs an API path with the read token (if any); an answer other than 2xx throws its ApiError. */
export async function getJson<T>(path: string): Promise<T> {
  const token = readToken()
  const res = await send(path, {
    headers: { Accept: 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  })
  if (!res.ok) throw await errorOf(res)
  return (await res.json()) as T
}

/** POSTs `body` as JSON with `token` (none when null: the server answers 401); throws the ApiError. */
export async function postJson<T>(path: string, body: unknown, token: string | null): Promise<T> {
  const res = await send(path, {
    method: 'POST',
    headers: {
      Accept: 'application/json',
      'Content-Type': 'application/json',
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  })
  if (!res.ok) throw await errorOf(res)
  const text = await res.text()
  return (text === '' ? null : JSON.parse(text)) as T
}
