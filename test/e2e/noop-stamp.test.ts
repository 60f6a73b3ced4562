// The no-op fast path of `grail build` (src/cli/noop-stamp.ts): answered from the stamp only while every
// input is as it recorded, with the output the full path prints; any change takes the full path. Whether
// a run took the fast path shows in the state database: the full path writes it (the build lock row),
// the fast path never opens it.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readdir, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { grail, removeDir, tempProject } from '../helpers/project.js'

const spec = (extra = '') => `project: stamped
images:
  app:
    base: scratch
    steps:
      - copy: site/ /srv
      - cmd: ["/srv/run"]
${extra}`

interface Outcome {
  images: Array<{ name: string; version: number; unchanged: boolean; restored?: boolean; digest: string }>
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('no-op grail build: the stamp', () => {
  let dir: string
  const db = () => join(dir, '.grail', 'state.db')
  const dbId = async () => {
    const st = await stat(db(), { bigint: true })
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`
  }

  /** Runs `grail build` and says whether it took the fast path (the database untouched). */
  async function build(args = ['--json', 'build'], env: Record<string, string> = {}) {
    const before = await dbId()
    const res = await grail(args, { cwd: dir, env })
    assert.equal(res.code, 0, res.stderr)
    return { res, fast: (await dbId()) === before }
  }

  /**
   * Takes the full path (the stamp removed) until a run records a stamp (a build after a change may
   * rewrite grail.lock, and inputs changed within the last second are not stamped: file times are
   * coarse), then checks that the next run takes the fast path with the full path's output.
   */
  async function stamped(args = ['--json', 'build']) {
    await rm(join(dir, '.grail', 'noop-stamp.json'), { force: true })
    let full: Awaited<ReturnType<typeof build>> | undefined
    for (let i = 0; i < 5; i++) {
      const run = await build(args)
      if (run.fast) {
        assert.ok(full, 'a run without a stamp takes the full path')
        assert.equal(run.res.stdout, full.res.stdout)
        assert.equal(run.res.stderr, full.res.stderr)
        return full.res.stdout
      }
      full = run
      await pause(1100)
    }
    assert.fail('no run took the fast path')
  }

  const outcome = (stdout: string) => JSON.parse(stdout) as Outcome

  before(async () => {
    dir = await tempProject({
      'grail.yaml': spec(),
      'site/run': '#!/bin/sh\necho one\n',
      'site/page.html': '<p>hello</p>\n',
    })
    const first = await grail(['--json', 'build'], { cwd: dir })
    assert.equal(first.code, 0, first.stderr)
    assert.equal(outcome(first.stdout).images[0]?.unchanged, false)
  })
  after(async () => {
    await removeDir(dir)
  })

  test('a no-op build after a stamped one prints the same JSON and human output', async () => {
    const json = await stamped()
    assert.equal(outcome(json).images[0]?.unchanged, true)
    const human = await stamped(['build'])
    assert.match(human, /^app v1 unchanged \(nothing to build\) {2}sha256:/)
    // the stamp holds the output and the fast path is the one for the flags it was made with
    assert.equal((await stat(join(dir, '.grail', 'noop-stamp.json'))).mode & 0o777, 0o600)
    const verbose = await build(['build', '--verbose'])
    assert.equal(verbose.fast, false)
    assert.equal(verbose.res.stdout, human)
  })

  test('a content change of the same size with its mtime put back is built; its revert is v1 again', async () => {
    await stamped()
    const file = join(dir, 'site/page.html')
    const was = await stat(file)
    await writeFile(file, '<p>HELLO</p>\n')
    await utimes(file, was.atime, was.mtime)
    const changed = await build()
    assert.equal(changed.fast, false)
    assert.deepEqual(
      outcome(changed.res.stdout).images.map((i) => [i.version, i.unchanged]),
      [[2, false]],
    )
    await stamped()
    await writeFile(file, '<p>hello</p>\n')
    await utimes(file, was.atime, was.mtime)
    const reverted = await build()
    assert.equal(reverted.fast, false)
    assert.deepEqual(
      outcome(reverted.res.stdout).images.map((i) => [i.version, i.unchanged]),
      [[1, true]],
    )
  })

  test('a renamed, a new and a deleted file each take the full path', async () => {
    await stamped()
    await rename(join(dir, 'site/page.html'), join(dir, 'site/other.html'))
    const renamed = await build()
    assert.equal(renamed.fast, false)
    assert.equal(outcome(renamed.res.stdout).images[0]?.unchanged, false)

    await stamped()
    await writeFile(join(dir, 'site/new.html'), 'new\n')
    const added = await build()
    assert.equal(added.fast, false)
    assert.equal(outcome(added.res.stdout).images[0]?.unchanged, false)

    await stamped()
    await unlink(join(dir, 'site/new.html'))
    const removed = await build()
    assert.equal(removed.fast, false)
    assert.equal(outcome(removed.res.stdout).images[0]?.unchanged, true)
  })

  test('a spec change, a chmod and another environment each take the full path', async () => {
    await stamped()
    await writeFile(join(dir, 'grail.yaml'), spec('      - env: { MODE: "x" }\n'))
    const respec = await build()
    assert.equal(respec.fast, false)
    assert.equal(outcome(respec.res.stdout).images[0]?.unchanged, false)

    await stamped()
    execFileSync('chmod', ['755', join(dir, 'site/run')])
    const chmod = await build()
    assert.equal(chmod.fast, false)
    assert.equal(outcome(chmod.res.stdout).images[0]?.unchanged, false)

    await stamped()
    const epoch = await build(['--json', 'build'], { SOURCE_DATE_EPOCH: '7' })
    assert.equal(epoch.fast, false)
  })

  test('an image removed from the store or the catalog changed takes the full path', async () => {
    const stampedOut = outcome(await stamped())
    const image = stampedOut.images[0]
    assert.ok(image)
    // gc or damage: a blob of the image gone
    const blob = join(dir, '.grail', 'oci', 'blobs', 'sha256', image.digest.slice('sha256:'.length))
    await rm(blob)
    const restored = await build()
    assert.equal(restored.fast, false)
    assert.equal(outcome(restored.res.stdout).images[0]?.restored, true)

    await stamped()
    // another command writing the catalog: the version revoked
    const revoke = await grail(['revoke', `app@${image.version}`, '--reason', 'test'], { cwd: dir })
    assert.equal(revoke.code, 0, revoke.stderr)
    const res = await grail(['--json', 'build'], { cwd: dir })
    const again = await grail(['--json', 'build'], { cwd: dir })
    // whatever a build makes of a revoked version, it is what the full path says, twice
    assert.equal(again.stdout, res.stdout)
    assert.equal(again.code, res.code)
  })

  test('stale work of a killed build takes the full path, which cleans it', async () => {
    // a new version: the one before was revoked (and a revoked version is never stamped)
    await writeFile(join(dir, 'site/page.html'), '<p>after the revoke</p>\n')
    await stamped()
    const stale = join(dir, '.grail', 'tmp', 'layer-999999-0123456789ab')
    await writeFile(stale, 'left behind')
    const res = await build()
    assert.equal(res.fast, false)
    assert.ok(!(await readdir(join(dir, '.grail', 'tmp'))).includes('layer-999999-0123456789ab'))
  })
})
