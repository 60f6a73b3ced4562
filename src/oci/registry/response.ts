import { GrailError } from '../../errors.js'
import type { Digest } from '../digest.js'
import { isDigest } from '../digest.js'
import { type Response, shownPath } from './transport.js'

/** The token scopes of a read and of a write to `repo`. */
export const pull = (repo: string) => [`repository:${repo}:pull`]
export const push = (repo: string) => [`repository:${repo}:pull,push`]

/** Reads an error response's body, `{"errors":[{"code","message"}]}`, into a REGISTRY_ERROR. */
export async function registryError(
  registry: string,
  method: string,
  url: string,
  res: Response,
): Promise<GrailError> {
  let detail = ''
  let codes: string[] = []
  try {
    const text = (await res.body.text()).slice(0, 64 * 1024)
    const json = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> }
    const errs = (json.errors ?? []).filter((e) => typeof e.code === 'string')
    codes = errs.map((e) => String(e.code))
    detail = errs.map((e) => `${e.code}${typeof e.message === 'string' ? `: ${e.message}` : ''}`).join('; ')
  } catch {
    // not the spec's JSON: the status says enough
  }
  const code = res.statusCode === 404 ? 'REGISTRY_NOT_FOUND' : 'REGISTRY_ERROR'
  return new GrailError(
    code,
    `registry ${registry}: ${method} ${shownPath(url)} answered ${res.statusCode}${detail ? ` (${detail})` : ''}`,
    {
      details: codes,
    },
  )
}

export function mediaTypeOf(res: Response, bytes: Buffer | undefined): string {
  const ct =
    String(res.headers['content-type'] ?? '')
      .split(';')[0]
      ?.trim() ?? ''
  if (bytes !== undefined && (ct === '' || ct === 'application/json' || ct === 'application/octet-stream')) {
    try {
      const m = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType
      if (typeof m === 'string') return m
    } catch {
      // left to the caller's JSON parse
    }
  }
  return ct
}

export function headerDigest(res: Response): Digest | undefined {
  const d = res.headers['docker-content-digest']
  const s = Array.isArray(d) ? d[0] : d
  return s !== undefined && isDigest(s) ? s : undefined
}

/** Reads a body of at most `max` bytes (a registry that streams forever is cut off). */
export async function readLimited(res: Response, max: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = []
  let n = 0
  for await (const chunk of res.body) {
    n += (chunk as Buffer).length
    if (n > max) throw new GrailError('REGISTRY_ERROR', `${what} is larger than ${max} bytes`)
    parts.push(chunk as Buffer)
  }
  return Buffer.concat(parts)
}

/** Throws the registry's error unless the status is one of `ok`. */
export async function expectStatus(
  registry: string,
  method: string,
  url: string,
  res: Response,
  ok: number[],
): Promise<void> {
  if (!ok.includes(res.statusCode)) throw await registryError(registry, method, url, res)
}
