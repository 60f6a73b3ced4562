// A damaged, empty or missing state.db: every command refuses it naming the file and the way back
// (restore it, or `grail state reset --force`), never with a stack and never by starting over on an
// empty state while the project's instances run; a brand-new project still starts without a word.
import assert from 'node:assert/strict'
import { copyFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, parseJson, removeDir, tearDown, tempProject } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

const spec = (port: number) => `project: damaged
${httpdImages()}services:
  web:
    image: web
    port: 8080
    publish: ${port}
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
`

const COMMANDS = [['status'], ['plan'], ['images'], ['events'], ['down'], ['up'], ['build']]

describe('a damaged or lost state.db', () => {
  let dir: string
  let db: string
  let backup: string
  let url: string

  /** Runs every command; each must exit 1 with `expect` on stderr, naming the file, without a stack. */
  const refusedEverywhere = async (expect: RegExp) => {
    for (const args of COMMANDS) {
      const res = await grail(args, { cwd: dir })
      assert.equal(res.code, 1, `${args.join(' ')}: ${res.stderr}`)
      assert.ok(res.stderr.includes(db), `${args.join(' ')}: ${res.stderr}`)
      assert.match(res.stderr, expect, args.join(' '))
      assert.match(res.stderr, /grail state reset --force/)
      assert.doesNotMatch(res.stderr, /internal error|This is a bug|\n\s+at /)
    }
    // the instance was left alone
    assert.equal((await (await fetch(url)).text()).trim(), 'up')
  }
  const restore = async () => {
    await copyFile(backup, db)
    assert.equal(
      parseJson<{ instances: unknown[] }>(await grail(['--json', 'status'], { cwd: dir })).instances.length,
      1,
    )
  }

  before(async () => {
    const port = await freePort()
    url = `http://127.0.0.1:${port}/index.html`
    dir = await busyboxProject({ 'grail.yaml': spec(port), 'site/index.html': 'up\n' })
    db = join(dir, '.grail', 'state.db')
    backup = join(dir, 'state.db.backup')
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
    await copyFile(db, backup)
  })
  after(async () => {
    await tearDown(dir)
  })

  test('truncated to half: every command exits 1 naming the file as damaged, with no stack', async () => {
    await truncate(db, Math.floor((await stat(db)).size / 2))
    await refusedEverywhere(/is damaged/)
    const json = await grail(['--json', 'status'], { cwd: dir })
    assert.equal(json.code, 1)
    assert.equal(JSON.parse(json.stderr).error.code, 'STATE_DAMAGED')
    await restore()
  })

  test('overwritten with garbage: refused the same way', async () => {
    await writeFile(db, 'not a database, just text that happens to be here\n'.repeat(200))
    await refusedEverywhere(/is damaged/)
    await restore()
  })

  test('0 bytes while the instance runs: refused, naming what the project still has', async () => {
    await truncate(db, 0)
    await refusedEverywhere(/is empty \(0 bytes\), but this project has run before[\s\S]*1 instance bundle/)
    assert.equal((await stat(db)).size, 0, 'nothing was written into the empty file')
    await restore()
  })

  test('missing while the instance runs: refused, and no new state.db appears', async () => {
    await rm(db)
    await refusedEverywhere(/is missing, but this project has run before[\s\S]*1 runc container/)
    await assert.rejects(stat(db), { code: 'ENOENT' })
    await restore()
  })

  test('grail state reset --force: stops what the lost state ran, keeps the old file, and up works again', async () => {
    await truncate(db, Math.floor((await stat(db)).size / 2))
    const asked = await grail(['state', 'reset'], { cwd: dir })
    assert.equal(asked.code, 1, asked.stderr)
    assert.match(asked.stderr, /--force/)
    assert.equal((await (await fetch(url)).text()).trim(), 'up', 'without --force nothing is touched')
    const reset = await grail(['state', 'reset', '--force'], { cwd: dir })
    assert.equal(reset.code, 0, reset.stderr)
    assert.match(reset.stdout, /stopped 1 instance\(s\) and 1 proxy/)
    await assert.rejects(fetch(url), 'the old instance and its proxy are gone')
    const kept = (await readdir(join(dir, '.grail'))).filter((n) => n.startsWith('state.db.reset-'))
    assert.equal(kept.length, 1)
    const events = parseJson<Array<{ kind: string }>>(await grail(['--json', 'events'], { cwd: dir }))
    assert.deepEqual(
      events.map((e) => e.kind),
      ['state.reset'],
    )
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
    assert.equal((await (await fetch(url)).text()).trim(), 'up')
    await copyFile(db, backup)
  })
})

describe('a new project', () => {
  let dir: string
  before(async () => {
    dir = await tempProject({ 'grail.yaml': spec(1), 'site/index.html': 'up\n' })
  })
  after(async () => {
    await removeDir(dir)
  })

  test('with nothing under .grail, state is created without a word', async () => {
    for (const args of [['images'], ['events'], ['status']]) {
      const res = await grail(args, { cwd: dir })
      assert.equal(res.code, 0, res.stderr)
      assert.equal(res.stderr, '')
    }
    assert.ok((await stat(join(dir, '.grail', 'state.db'))).size > 0)
  })
})
