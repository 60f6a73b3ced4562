// examples/counter: data written into a declared volume by one release is read by the next, after
// every instance has been replaced.
import assert from 'node:assert/strict'
import { cp, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { freePort } from '../helpers/net.js'
import { REPO, grail, parseJson, removeDir } from '../helpers/project.js'

let dir = ''
after(async () => {
  if (!dir) return
  await grail(['down'], { cwd: dir })
  await removeDir(dir)
})

test('the visit count survives a new release that replaces every instance', async () => {
  dir = await mkdtemp(join(tmpdir(), 'grail-counter-'))
  await cp(join(REPO, 'examples/counter'), dir, { recursive: true, filter: (s) => !s.includes('.grail') })
  const port = await freePort()
  const yaml = join(dir, 'grail.yaml')
  const { readFile } = await import('node:fs/promises')
  await writeFile(yaml, (await readFile(yaml, 'utf8')).replace('publish: 8081', `publish: ${port}`))
  const count = async () => (await (await fetch(`http://127.0.0.1:${port}/cgi-bin/count`)).text()).trim()

  assert.equal((await grail(['up'], { cwd: dir })).code, 0)
  const first = parseJson<{ instances: Array<{ id: string }> }>(
    await grail(['--json', 'status'], { cwd: dir }),
  )
  assert.equal(await count(), '1')
  assert.equal(await count(), '2')

  await writeFile(join(dir, 'site/index.html'), '<p>release two</p>\n')
  const up = await grail(['up'], { cwd: dir })
  assert.equal(up.code, 0, up.stderr)
  const second = parseJson<{ instances: Array<{ id: string; release: number }> }>(
    await grail(['--json', 'status'], { cwd: dir }),
  )
  assert.ok(
    second.instances.every((i) => !first.instances.some((f) => f.id === i.id)),
    'every instance was replaced',
  )
  assert.equal(await count(), '3')
})
