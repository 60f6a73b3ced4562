// `grail init` scaffolds a spec that validates as is, and never overwrites one by accident.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { grailJsonSchemaText } from '../../src/spec/json-schema.js'
import { loadProject } from '../../src/spec/index.js'
import { grail, removeDir } from '../helpers/project.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await removeDir(d)
})

test('grail init writes a valid spec and a site, then refuses to overwrite it', async () => {
  const parent = await mkdtemp(join(tmpdir(), 'grail-init-'))
  dirs.push(parent)
  const dir = join(parent, 'My Shop')
  const res = await grail(['init', dir])
  assert.equal(res.code, 0, res.stderr)
  for (const f of ['grail.yaml', 'site/index.html', 'site/healthz', '.gitignore'])
    assert.ok(existsSync(join(dir, f)), f)
  const project = await loadProject(dir)
  assert.equal(project.name, 'my-shop')
  assert.equal(project.images['my-shop']?.base.kind, 'debian')
  assert.equal(project.services.web?.image, 'my-shop')

  const again = await grail(['init', dir])
  assert.equal(again.code, 1)
  assert.match(again.stderr, /grail\.yaml already exists/)
  assert.match(again.stderr, /--force/)
})

test('grail init points editors at the schema of the installed Grail, never at a network location', async () => {
  const parent = await mkdtemp(join(tmpdir(), 'grail init schema '))
  dirs.push(parent)
  const res = await grail(['init', parent])
  assert.equal(res.code, 0, res.stderr)
  const spec = await readFile(join(parent, 'grail.yaml'), 'utf8')
  const modeline = spec.split('\n')[0] ?? ''
  // yaml-language-server reads the modeline up to the first whitespace
  const m = /^# yaml-language-server: \$schema=(\S+)$/.exec(modeline)
  assert.ok(m?.[1], `first line is the modeline: ${modeline}`)
  assert.doesNotMatch(spec, /https?:\/\//)
  const url = new URL(m[1])
  assert.equal(url.protocol, 'file:')
  const schema = await readFile(fileURLToPath(url), 'utf8')
  assert.equal(schema, grailJsonSchemaText())

  const printed = await grail(['schema'])
  assert.equal(printed.code, 0, printed.stderr)
  assert.equal(printed.stdout, schema)
})
