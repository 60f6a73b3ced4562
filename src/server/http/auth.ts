import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import { GrailError } from '../../errors.js'
import type { Db, TokenRecord } from '../../state/index.js'
import { touchToken, verifyToken } from '../../state/index.js'
import type { Access } from './router.js'

/** True for an address only this machine can reach: 127.0.0.0/8, ::1, `localhost`. */
export function isLoopback(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (h === 'localhost') return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./i.test(h)
  return false
}

/** The bearer token of a request's Authorization header, or undefined when it has none. */
export function bearerOf(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization
  if (header === undefined) return undefined
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  return m ? m[1] : ''
}

/**
 * Decides whether a request may reach a route: `none` always; `read` with a read or write token (or
 * without one under insecure reads); `write` only with a write token. Refuses with API_UNAUTHORIZED
 * (401: no token, an unknown or revoked one) or API_FORBIDDEN (403: a read token on a write). Nothing
 * is written to state unless the request is allowed (then the token's last use is noted).
 */
export function authorize(
  db: Db,
  req: IncomingMessage,
  access: Access,
  opts: { insecureRead: boolean },
): TokenRecord | null {
  if (access === 'none') return null
  if (access === 'read' && opts.insecureRead) return null
  const presented = bearerOf(req)
  if (presented === undefined || presented === '') {
    throw new GrailError(
      'API_UNAUTHORIZED',
      presented === undefined
        ? 'this request needs a bearer token'
        : 'the Authorization header is not "Bearer TOKEN"',
      {
        hint: `send Authorization: Bearer TOKEN with a token from \`grail token create --scope ${access}\``,
      },
    )
  }
  const token = verifyToken(db, presented)
  if (!token) {
    throw new GrailError('API_UNAUTHORIZED', 'the bearer token is unknown or revoked', {
      hint: 'see `grail token list`; create a new one with `grail token create`',
    })
  }
  if (access === 'write' && token.scope !== 'write') {
    throw new GrailError('API_FORBIDDEN', `token ${token.name} may only read; this is a write`, {
      hint: 'use a token created with `grail token create --scope write`',
    })
  }
  touchToken(db, token)
  return token
}
