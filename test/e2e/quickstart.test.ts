// The README's main command, as written: build examples/hello, deploy 3 instances behind the proxy,
// print a URL that serves the page; `grail status` shows them healthy with version and age.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { REPO, grail, parseJson } from '../helpers/project.js'

const hello = join(REPO, 'examples/hello')

after(async () => {
  await grail(['down'], { cwd: hello })
  await rm(join(hello, '.grail'), { recursive: true, force: true })
})

test('./scripts/quickstart builds and deploys examples/hello and prints a URL that serves the page', async () => {
  const res = spawnSync(join(REPO, 'scripts/quickstart'), {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  })
  assert.equal(res.status, 0, `${res.stdout}\n${res.stderr}`)
  const url = /web: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(res.stdout)?.[1]
  assert.ok(url, res.stdout)
  const page = await (await fetch(url)).text()
  assert.match(page, /Hello from Grail/)
  const status = parseJson<{ instances: Array<{ health: string; image: string; createdAt: string }> }>(
    await grail(['--json', 'status'], { cwd: hello }),
  )
  assert.equal(status.instances.length, 3)
  for (const i of status.instances) {
    assert.equal(i.health, 'healthy')
    assert.match(i.image, /^hello v\d+$/)
    assert.ok(Date.now() - Date.parse(i.createdAt) < 10 * 60_000)
  }
  assert.match(res.stdout, /INSTANCE\s+SERVICE\s+RELEASE\s+IMAGE\s+AGE\s+HEALTH/)
})
