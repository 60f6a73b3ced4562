// Writes schema/grail.schema.json and the key reference in docs/spec.md from the zod schema in src/spec.
// Run `npm run schema` after changing the schema; src/spec/json-schema.test.ts fails while they are stale.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { grailJsonSchema, grailJsonSchemaText } from '../src/spec/json-schema.js'
import { renderReference, spliceReference } from '../src/spec/reference.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const schemaFile = join(root, 'schema', 'grail.schema.json')
const docFile = join(root, 'docs', 'spec.md')

await mkdir(dirname(schemaFile), { recursive: true })
await writeFile(schemaFile, grailJsonSchemaText())
const doc = await readFile(docFile, 'utf8')
await writeFile(docFile, spliceReference(doc, renderReference(grailJsonSchema())))
console.log(`wrote ${schemaFile} and the reference in ${docFile}`)
