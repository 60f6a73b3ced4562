/**
 * Compiles a path glob to a RegExp: `**` matches any number of path segments, `*` anything but `/`,
 * `?` one character but `/`. A pattern without `/` matches a name at any depth (as .gitignore does).
 */
export function globToRegExp(pattern: string): RegExp {
  let p = pattern.replace(/^\/+/, '').replace(/\/+$/, '')
  const anchored = pattern.startsWith('/') || p.includes('/')
  let re = ''
  for (let i = 0; i < p.length; i++) {
    const ch = p[i] as string
    if (ch === '*') {
      if (p[i + 1] === '*') {
        const slash = p[i + 2] === '/'
        re += slash ? '(?:.*/)?' : '.*'
        i += slash ? 2 : 1
      } else re += '[^/]*'
    } else if (ch === '?') re += '[^/]'
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  p = re
  return new RegExp(`^${anchored ? '' : '(?:.*/)?'}${p}(?:/.*)?$`)
}

/** True when `path` (relative, `/`-separated) matches any of the globs. */
export function matchesAny(path: string, globs: readonly RegExp[]): boolean {
  return globs.some((g) => g.test(path))
}
