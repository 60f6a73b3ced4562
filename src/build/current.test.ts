import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import type { Project } from '../spec/types.js'
import type { BuildInputs } from '../state/index.js'
import { openDb, recordImageVersion } from '../state/index.js'
import { whatChanged } from './current.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

const file = (from: string, hash: string) => ({ from, hash: `file:644:0:0:${hash}` })
const inputs = (over: Partial<BuildInputs> = {}, sources = {}): BuildInputs => ({
  base: { key: 'base-1', description: 'rootfs ./rootfs.tar' },
  steps: [
    {
      key: `copy-${JSON.stringify(sources)}`,
      label: 'copy site/ /srv/www',
      sources: {
        'srv/www/index.html': file('site/index.html', 'a'),
        'srv/www/old.html': file('site/old.html', 'b'),
        ...sources,
      },
    },
    { key: `cmd-${JSON.stringify(sources)}`, label: 'cmd ["httpd"]' },
  ],
  ...over,
})

test('what changed since a version: the source files, the base, the step whose definition changed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-cur-'))
  dirs.push(dir)
  const db = openDb(join(dir, 'state.db'))
  const project = { dir, images: { web: { context: dir } } } as unknown as Project
  const { record } = recordImageVersion(
    db,
    {
      name: 'web',
      digest: `sha256:${'1'.repeat(64)}`,
      configDigest: `sha256:${'c'.repeat(64)}`,
      buildKey: 'k1',
      parentDigest: null,
      base: {},
      gitCommit: null,
      createdAt: new Date().toISOString(),
      size: 1,
      packages: [],
    },
    inputs(),
  )
  const now = (i: BuildInputs) => ({ name: 'web', built: false as const, buildKey: 'k2', inputs: i })
  const sources = inputs(
    {},
    {
      'srv/www/index.html': file('site/index.html', 'A'),
      'srv/www/old.html': undefined,
      'srv/www/new.html': file('site/new.html', 'c'),
    },
  )
  delete sources.steps[0]?.sources?.['srv/www/old.html']
  assert.equal(
    whatChanged(project, db, now(sources), record),
    'sources changed since v1 (site/index.html, site/new.html, site/old.html)',
  )
  const base = inputs({ base: { key: 'base-2', description: 'rootfs ./rootfs.tar' } })
  assert.equal(whatChanged(project, db, now(base), record), 'base rootfs ./rootfs.tar changed since v1')
  const cmd = inputs()
  cmd.steps[1] = { key: 'cmd-other', label: 'cmd ["httpd","-v"]' }
  assert.equal(
    whatChanged(project, db, now(cmd), record),
    'the spec changed since v1: images.web.steps[1] (cmd ["httpd","-v"])',
  )
  assert.equal(
    whatChanged(project, db, { name: 'app', built: false, buildKey: null, parent: 'web' }, record),
    'built on image web, which needs a build',
  )
  db.close()
})
