import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { removeDir, tempProject } from '../../test/helpers/project.js'
import { loadProjectCached } from './load-project.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await removeDir(d)
})

test('an unchanged grail.yaml is not validated again; a changed one is', async () => {
  const dir = await tempProject({ 'grail.yaml': 'project: one\nimages:\n  app:\n    base: scratch\n' })
  dirs.push(dir)
  const first = await loadProjectCached(dir)
  assert.equal(first.name, 'one')
  const cacheFile = join(dir, '.grail', 'spec-cache.json')
  const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as { key: string; project: { name: string } }
  cached.project.name = 'from-cache'
  await writeFile(cacheFile, JSON.stringify(cached))
  assert.equal((await loadProjectCached(dir)).name, 'from-cache', 'the cached result is used')
  await writeFile(join(dir, 'grail.yaml'), 'project: two\nimages:\n  app:\n    base: scratch\n')
  assert.equal((await loadProjectCached(dir)).name, 'two', 'a changed file is loaded again')
})

test('an invalid spec is never cached and keeps failing', async () => {
  const dir = await tempProject({ 'grail.yaml': 'project: one\nimagez: {}\n' })
  dirs.push(dir)
  await assert.rejects(loadProjectCached(dir), { code: 'SPEC_INVALID' })
  await assert.rejects(loadProjectCached(dir), { code: 'SPEC_INVALID' })
})
