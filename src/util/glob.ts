import picomatch from 'picomatch'

/** A compiled list of globs: true when a relative, `/`-separated path matches any of them. */
export type GlobMatcher = (path: string) => boolean

/**
 * Compiles path globs with picomatch (`*`, `?`, `[a-z]`, `{a,b}`, `**`, extglobs), the one place Grail
 * matches globs. Paths are relative and `/`-separated; a leading `/` in a pattern only anchors it.
 * As in .gitignore, a pattern without `/` matches a name at any depth, a pattern with one is matched
 * from the root, `*` and `?` never cross `/`, dotfiles match like any other name, and a pattern that
 * matches a directory also matches everything under it.
 */
export function compileGlobs(patterns: readonly string[]): GlobMatcher {
  const sources = patterns
    .map((p) => {
      const rooted = p.startsWith('/')
      const bare = p.replace(/^\/+/, '').replace(/\/+$/, '')
      return rooted || bare.includes('/') ? bare : `**/${bare}`
    })
    .filter((p) => p !== '' && p !== '**/')
  if (sources.length === 0) return () => false
  const test = picomatch(sources, { dot: true })
  return (path) => {
    const parts = path.split('/').filter((s) => s !== '')
    for (let i = 1; i <= parts.length; i++) if (test(parts.slice(0, i).join('/'))) return true
    return false
  }
}
