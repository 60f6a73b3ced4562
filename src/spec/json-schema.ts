import { z } from 'zod'
import { grailSchema } from './schema.js'

/**
 * The JSON Schema of grail.yaml (draft 2020-12), generated from the zod schema on its input side, so
 * shorthands such as `publish: 8080` or `run: make` validate and editors complete every key.
 */
export function grailJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(grailSchema, { io: 'input', target: 'draft-2020-12' }) as Record<
    string,
    unknown
  >
  const { $schema, ...rest } = schema
  return { $schema, $id: 'grail.schema.json', title: 'grail.yaml', ...rest }
}

/** The exact text of schema/grail.schema.json (kept in git; a test fails when it is stale). */
export function grailJsonSchemaText(): string {
  return `${JSON.stringify(grailJsonSchema(), null, 2)}\n`
}
