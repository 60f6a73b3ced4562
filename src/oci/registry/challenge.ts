/** One challenge of a `WWW-Authenticate` header: its scheme (lower case) and its parameters. */
export interface AuthChallenge {
  scheme: string
  /** parameter names in lower case; `scope` holds every scope given, space-separated */
  params: Record<string, string>
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/

/**
 * Parses a `WWW-Authenticate` value (RFC 7235): one or more challenges, each a scheme and a comma-separated
 * list of `name=value` parameters where a value is a token or a quoted string (with `\` escapes, and commas
 * inside). `Bearer realm="https://a/token",service="reg",scope="repository:x:pull,push"` gives one
 * challenge; `Bearer realm="…", Basic realm="…"` gives two. Parameters repeated (several `scope=`) are
 * joined with a space. Anything unparsable ends the parse: what was read before it is returned.
 */
export function parseWwwAuthenticate(header: string | string[] | undefined): AuthChallenge[] {
  if (header === undefined) return []
  const text = Array.isArray(header) ? header.join(', ') : header
  const out: AuthChallenge[] = []
  let i = 0
  const skip = (chars: string) => {
    while (i < text.length && chars.includes(text[i] as string)) i++
  }
  const token = (): string | undefined => {
    const m = TOKEN_RE.exec(text.slice(i))
    if (!m) return undefined
    i += m[0].length
    return m[0]
  }
  let current: AuthChallenge | undefined
  while (i < text.length) {
    skip(' \t,')
    if (i >= text.length) break
    const start = i
    const name = token()
    if (name === undefined) break
    skip(' \t')
    if (text[i] === '=' && current !== undefined && !/^=+\s*(,|$)/.test(text.slice(i))) {
      // a parameter of the current challenge
      i++
      skip(' \t')
      let value: string
      if (text[i] === '"') {
        i++
        value = ''
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length) i++
          value += text[i]
          i++
        }
        i++ // the closing quote
      } else {
        const v = /^[^,\s]*/.exec(text.slice(i))?.[0] ?? ''
        i += v.length
        value = v
      }
      const key = name.toLowerCase()
      const prev = current.params[key]
      current.params[key] = prev === undefined ? value : `${prev} ${value}`
      continue
    }
    // a new challenge: the scheme, maybe followed by a token68 (`Basic abc==`), then its parameters
    i = start + name.length
    current = { scheme: name.toLowerCase(), params: {} }
    out.push(current)
    skip(' \t')
    const rest = text.slice(i)
    const t68 = /^[A-Za-z0-9\-._~+/]+=*(?=\s*(,|$))/.exec(rest)
    if (t68 && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\s*=[^=]/.test(rest)) i += t68[0].length
  }
  return out
}

/** The scopes a challenge asks for, one per entry (`repository:a/b:pull,push`). */
export function challengeScopes(c: AuthChallenge): string[] {
  return (c.params.scope ?? '').split(' ').filter((s) => s.length > 0)
}
