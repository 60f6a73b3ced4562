import { existsSync } from 'node:fs'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createJiti } from 'jiti'
import { GrailError } from '../errors.js'

/**
 * `import { defineConfig } from 'grail'` in a config resolves to this project's define-config module:
 * the .ts source when Grail runs from src (tests, tsx), the .js build when it runs from dist.
 */
function defineConfigModule(): string {
  const self = fileURLToPath(import.meta.url)
  const own = fileURLToPath(new URL(`./define-config${extname(self)}`, import.meta.url))
  return existsSync(own) ? own : fileURLToPath(new URL('./define-config.js', import.meta.url))
}

/**
 * Evaluates a `grail.config.ts` (or .mts/.js/.mjs) with jiti and returns its default export, unvalidated.
 * A config that fails to load, or has no default export, is the user's error (`SPEC_INVALID`).
 */
export async function importConfig(file: string, shown: string): Promise<unknown> {
  const jiti = createJiti(import.meta.url, {
    alias: { grail: defineConfigModule() },
    moduleCache: false,
    fsCache: false,
    interopDefault: false,
  })
  let mod: unknown
  try {
    mod = await jiti.import(file)
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0]
    throw new GrailError('SPEC_INVALID', `${shown}: cannot be loaded: ${first}`, {
      hint: 'fix the error in the config file; `export default defineConfig({ ... })` is all it needs',
      cause: err,
    })
  }
  const config = await (mod as { default?: unknown } | undefined)?.default
  if (config === undefined) {
    throw new GrailError('SPEC_INVALID', `${shown}: has no default export`, {
      hint: "write `import { defineConfig } from 'grail'` and `export default defineConfig({ project: '...' })`",
    })
  }
  return config
}
