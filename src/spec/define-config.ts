import type { GrailConfigInput } from './schema.js'

/**
 * Typed identity for `grail.config.ts`: `export default defineConfig({ project: 'hello', ... })` gives
 * editor completion and type errors for the same keys as grail.yaml; the loader validates it with the
 * same schema.
 */
export function defineConfig(config: GrailConfigInput): GrailConfigInput {
  return config
}

export type { GrailConfigInput }
