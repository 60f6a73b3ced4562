/**
 * The bearer tokens the dashboard sends. They live in sessionStorage only: gone when the tab closes,
 * never in localStorage, a cookie or a URL, and sent only in an Authorization header.
 */

export type TokenKind = 'read' | 'write'

const key = (kind: TokenKind): string => `grail.token.${kind}`

/** The token of `kind` kept for this tab, or null. */
export function getToken(kind: TokenKind): string | null {
  const t = sessionStorage.getItem(key(kind))
  return t === null || t === '' ? null : t
}

/** Keeps `token` for this tab (an empty one forgets it). */
export function setToken(kind: TokenKind, token: string): void {
  const t = token.trim()
  if (t === '') sessionStorage.removeItem(key(kind))
  else sessionStorage.setItem(key(kind), t)
}

/** The token reads are sent with: the read token, else the write token (it may read too), else none. */
export function readToken(): string | null {
  return getToken('read') ?? getToken('write')
}
