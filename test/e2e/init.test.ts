// `grail init` scaffolds a spec that validates as is, and never overwrites one by accident.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
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
