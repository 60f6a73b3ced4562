import { readFileSync } from 'node:fs'

/** Set by the CLI bundle (scripts/build-cli.mjs) to package.json's version; absent when run from src or dist. */
declare const __GRAIL_VERSION__: string | undefined

/**
 * Grail's version: built into the bundle, which saves reading and parsing package.json on every start,
 * else read from package.json two levels up (from src/cli or dist/cli).
 */
export function grailVersion(): string {
  if (typeof __GRAIL_VERSION__ === 'string') return __GRAIL_VERSION__
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}
