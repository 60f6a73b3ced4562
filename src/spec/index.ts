/**
 * The spec module: grail.yaml / grail.config.ts → a validated, normalised `Project`, with errors that
 * name file:line:col, the key path, what was expected and found, and a hint.
 */
export { defineConfig } from './define-config.js'
export { formatDuration, parseDuration } from './duration.js'
export { requireEnvironment } from './environments.js'
export { grailJsonSchema } from './json-schema.js'
export type { LoadOptions } from './load.js'
export { SPEC_FILE_NAMES, findSpecFile, loadProject, parseYamlSpec, projectFromRaw } from './load.js'
export { mergeOverride } from './normalise.js'
export type { SpecProblem } from './problems.js'
export { SpecInvalidError, formatProblem } from './problems.js'
export type { GrailConfigInput } from './schema.js'
export { grailSchema } from './schema.js'
export type * from './types.js'
