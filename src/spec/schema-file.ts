import { fileURLToPath } from 'node:url'

/**
 * The JSON Schema file that ships with this copy of Grail (schema/grail.schema.json at the package
 * root; src/spec and dist/spec both sit two levels below it). `grail init` points editors at it, so
 * completion never depends on a network location.
 */
export function installedSchemaPath(): string {
  return fileURLToPath(new URL('../../schema/grail.schema.json', import.meta.url))
}
