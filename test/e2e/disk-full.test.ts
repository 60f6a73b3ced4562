// A full disk is the machine's state, not a bug in Grail: the command fails as a user error (exit 1)
// that says the disk is full and names the commands that find and free space, without a stack.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { busyboxProject, grail, removeDir } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

let dir: string | undefined
let mounted: string | undefined
after(async () => {
  if (mounted) execFileSync('umount', [mounted])
  if (dir) await removeDir(dir)
})

test('a build on a full disk is a user error that says so and names grail gc and grail images', async () => {
  dir = await busyboxProject({ 'grail.yaml': `project: full\n${httpdImages()}`, 'site/index.html': 'up\n' })
  // a Grail home on a tmpfs with room for the state but not for the unpacked busybox rootfs
  const home = join(dir, 'small-home')
  await mkdir(home)
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1200k', 'tmpfs', home])
  mounted = home
  for (const json of [false, true]) {
    const res = await grail(json ? ['--json', 'build'] : ['build'], { cwd: dir, env: { GRAIL_HOME: home } })
    assert.equal(res.code, 1, res.stderr)
    assert.doesNotMatch(res.stderr, /internal error|This is a bug|\n\s+at /)
    if (json) {
      const { error } = JSON.parse(res.stderr) as { error: { code: string; hint: string } }
      assert.equal(error.code, 'DISK_FULL')
      assert.match(error.hint, /grail gc --dry-run/)
    } else {
      assert.match(res.stderr, /error: the disk is full: ENOSPC/)
      assert.match(res.stderr, /hint: .*grail gc --dry-run.*grail images/)
    }
  }
})
