import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { z } from 'zod'
import { grailJsonSchema, grailJsonSchemaText } from './json-schema.js'
import { REFERENCE_END, REFERENCE_START, renderReference, spliceReference } from './reference.js'

const REPO = join(fileURLToPath(import.meta.url), '..', '..', '..')
const STALE = 'stale: run `npm run schema` and commit the result'

/** Every property schema in the JSON Schema, with its key path. */
function properties(s: unknown, path = '', out: Array<[string, Record<string, unknown>]> = []) {
  if (typeof s !== 'object' || s === null) return out
  const o = s as Record<string, unknown>
  for (const [k, v] of Object.entries((o.properties ?? {}) as Record<string, unknown>)) {
    out.push([`${path}.${k}`, v as Record<string, unknown>])
    properties(v, `${path}.${k}`, out)
  }
  for (const key of ['items', 'additionalProperties'])
    if (typeof o[key] === 'object') properties(o[key], `${path}.*`, out)
  for (const v of (o.anyOf ?? []) as unknown[]) properties(v, path, out)
  return out
}

describe('JSON Schema and reference docs', () => {
  it('schema/grail.schema.json is what the generator produces now', async () => {
    const committed = await readFile(join(REPO, 'schema', 'grail.schema.json'), 'utf8')
    assert.equal(committed, grailJsonSchemaText(), STALE)
  })

  it('the key reference in docs/spec.md is what the generator produces now', async () => {
    const doc = await readFile(join(REPO, 'docs', 'spec.md'), 'utf8')
    assert.ok(doc.includes(REFERENCE_START) && doc.includes(REFERENCE_END))
    assert.equal(doc, spliceReference(doc, renderReference(grailJsonSchema())), STALE)
  })

  it('accepts the example specs, shorthands included, and rejects invalid ones', async () => {
    const validate = z.fromJSONSchema(grailJsonSchema() as z.core.JSONSchema.JSONSchema)
    for (const example of ['spec-reference', 'hello']) {
      const raw = parse(await readFile(join(REPO, 'examples', example, 'grail.yaml'), 'utf8'))
      const result = validate.safeParse(raw)
      assert.ok(result.success, `${example}: ${JSON.stringify(result.error?.issues)}`)
    }
    const invalid = [
      { project: 'x', unknown: 1 },
      { project: 'Bad Name' },
      { project: 'x', images: { a: { steps: [{ run: 'make', env: {} }] } } },
      { project: 'x', images: { a: { steps: [{}] } } },
      { project: 'x', services: { web: { image: 'a', port: 70000 } } },
      { project: 'x', services: { web: { image: 'a', rollout: { drain: '2 sec' } } } },
    ]
    for (const raw of invalid) assert.equal(validate.safeParse(raw).success, false, JSON.stringify(raw))
  })

  it('documents every key, and the default of every key that has one', () => {
    for (const [path, prop] of properties(grailJsonSchema())) {
      assert.equal(typeof prop.description, 'string', `${path} has no description`)
      // a mapping defaulting to {} takes the defaults of its keys, which are checked one by one
      const containerDefault =
        JSON.stringify(prop.default) === '{}' && prop.type === 'object' && 'properties' in prop
      if ('default' in prop && !containerDefault)
        assert.match(prop.description as string, /Default/, `${path} does not state its default`)
    }
  })
})
