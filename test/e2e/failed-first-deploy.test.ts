// What `grail up` says when a release fails its health gate: after a failed first deploy there is no URL
// and no "previous release" (nothing serves yet); once a release serves, a failed one names it and its
// URL, and the URL is still printed.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

const spec = (port: number, health: string) => `project: firstfail
${httpdImages()}services:
  web:
    image: web
    port: 8080
    publish: ${port}
    healthcheck: { http: ${health}, interval: 100ms, timeout: 500ms }
    rollout: { healthTimeout: 2s, drain: 200ms }
`

describe('up after a release fails its health gate', () => {
  let dir: string
  let port: number
  let url: string
  before(async () => {
    port = await freePort()
    url = `http://127.0.0.1:${port}/`
    dir = await busyboxProject({ 'grail.yaml': spec(port, '/missing.html'), 'site/index.html': 'hi\n' })
  })
  after(async () => tearDown(dir))

  test('a failed first deploy: no URL, no previous release, "nothing serves yet"', async () => {
    const res = await grail(['up'], { cwd: dir })
    assert.equal(res.code, 1, res.stdout)
    assert.doesNotMatch(res.stdout, new RegExp(url.replace(/[.]/g, '\\.')))
    assert.doesNotMatch(res.stdout + res.stderr, /previous release|still serving/)
    assert.match(res.stdout, /web: nothing serves yet/)
    assert.match(res.stderr, /web release 1 failed its health gate: .*HTTP 404.*; nothing serves web yet/)
    const json = await grail(['--json', 'apply'], { cwd: dir })
    // a crash loop may hold the next attempt back; either way nothing serves and no URL is claimed
    const out = JSON.parse(json.stdout) as { urls: unknown[]; serving: Array<{ release?: number }> }
    assert.deepEqual(out.urls, [])
    assert.equal(out.serving[0]?.release, undefined)
  })

  test('once a release serves, a failed one names it and its URL', async () => {
    await writeFile(join(dir, 'grail.yaml'), spec(port, '/index.html'))
    await grail(['state', 'reset', '--force'], { cwd: dir }) // forget the crash loop of the first test
    const ok = await grail(['up'], { cwd: dir })
    assert.equal(ok.code, 0, ok.stderr)
    const good = /release (\d+) active/.exec(ok.stdout)?.[1]
    assert.ok(good, ok.stdout)
    await writeFile(join(dir, 'site/other.html'), 'x\n')
    await writeFile(join(dir, 'grail.yaml'), spec(port, '/missing.html'))
    const res = await grail(['up'], { cwd: dir })
    assert.equal(res.code, 1, res.stdout)
    assert.match(res.stderr, new RegExp(`rolled back: .*; release ${good} is still serving at ${url}`))
    assert.match(res.stdout, new RegExp(`web: ${url}`))
    assert.equal((await fetch(url)).status, 200)
  })
})
