// A build killed with SIGKILL in the middle of a sandboxed run step leaves a runc container, an overlay
// mount and a temp dir behind; the next build removes them and finishes.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { mountsUnder } from '../../src/util/mounts.js'
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js'
import { GRAIL_BIN, grail, removeDir, tempProject } from '../helpers/project.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await removeDir(d)
})

async function names(dir: string): Promise<string[]> {
  return existsSync(dir) ? readdir(dir) : []
}

test('the build after a SIGKILL cleans up the sandbox, mount and temp dir, then builds', async () => {
  const dir = await tempProject({
    'grail.yaml':
      'project: k\nimages:\n  app:\n    base: { rootfs: ./rootfs.tar }\n    steps:\n      - run: sleep 3 && echo done > /done\n',
  })
  dirs.push(dir)
  makeBusyboxRootfs(join(dir, 'rootfs.tar'))
  const home = join(dir, '.grail')
  const child = spawn(process.execPath, [GRAIL_BIN, 'build'], { cwd: dir, stdio: 'ignore' })
  const deadline = Date.now() + 20_000
  while (!(await names(join(home, 'runc'))).some((n) => n.startsWith('grail-b-'))) {
    assert.ok(Date.now() < deadline, 'the run step started')
    await sleep(50)
  }
  child.kill('SIGKILL')
  await new Promise((r) => child.on('close', r))
  assert.ok((await mountsUnder(home)).length > 0, 'the killed build left its overlay mounted')

  const res = await grail(['build'], { cwd: dir })
  assert.equal(res.code, 0, res.stderr)
  assert.match(res.stdout, /built app v1/)
  assert.deepEqual(await mountsUnder(home), [], 'no mount is left')
  assert.deepEqual(
    (await names(join(home, 'runc'))).filter((n) => n.startsWith('grail-b-')),
    [],
    'no sandbox is left',
  )
  assert.deepEqual(await names(join(home, 'tmp')), [], 'no temp dir is left')
})
