/** The `grail` package entry: `defineConfig` for grail.config.ts, and the normalised spec types. */
export { defineConfig } from './spec/index.js'
export type { GrailConfigInput } from './spec/index.js'
export type * from './spec/types.js'
