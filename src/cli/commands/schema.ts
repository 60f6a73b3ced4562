import type { Command } from 'commander'

/**
 * `grail schema`: the JSON Schema of grail.yaml, the same text as the schema/grail.schema.json that ships
 * with Grail. `grail schema > grail.schema.json` gives a project a copy it can commit.
 */
export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of grail.yaml (for editor completion and validation)')
    .action(async () => {
      const { grailJsonSchemaText } = await import('../../spec/json-schema.js')
      process.stdout.write(grailJsonSchemaText())
    })
}
