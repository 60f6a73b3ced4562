// The README's quick start, as written: `./scripts/quickstart` from the checkout builds examples/hello,
// deploys 3 instances behind the proxy and prints a URL that serves the page; it also puts `grail` on the
// PATH, so the README's next commands, `grail status` and `grail down`, work by name.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { lstatSync, readlinkSync, realpathSync, rmSync, symlinkSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { after, test } from 'node:test'
import { REPO, grail, parseJson } from '../helpers/project.js'

const hello = join(REPO, 'examples/hello')
const LINK = '/usr/local/bin/grail'

/** What was at the link's path before the test (undefined: nothing), put back afterwards. */
function linkBefore(): string | undefined {
  try {
    return lstatSync(LINK).isSymbolicLink() ? readlinkSync(LINK) : LINK
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}
const before = linkBefore()

after(async () => {
  await grail(['down'], { cwd: hello })
  await rm(join(hello, '.grail'), { recursive: true, force: true })
  // setup only replaces a link to a Grail checkout (never a file), so a link is all there is to put back
  if (before !== LINK) {
    rmSync(LINK, { force: true })
    if (before !== undefined) symlinkSync(before, LINK)
  }
})

/** `grail ARGS` run by name, as a user's shell would: found through the PATH, not as bin/grail.js. */
function grailByName(args: string[]) {
  return spawnSync('grail', args, {
    cwd: hello,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  })
}

/** The file `name` resolves to through the PATH, as `command -v` finds it. */
function onPath(name: string): string | undefined {
  const res = spawnSync('/bin/sh', ['-c', `command -v ${name}`], { encoding: 'utf8' })
  return res.status === 0 ? res.stdout.trim() : undefined
}

test('./scripts/quickstart deploys examples/hello, prints a URL that serves the page, and `grail` works by name', async () => {
  const res = spawnSync('./scripts/quickstart', {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  })
  assert.equal(res.status, 0, `${res.stdout}\n${res.stderr}`)
  const url = /web: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(res.stdout)?.[1]
  assert.ok(url, res.stdout)
  const page = await (await fetch(url)).text()
  assert.match(page, /Hello from Grail/)
  assert.match(res.stdout, /INSTANCE\s+SERVICE\s+RELEASE\s+IMAGE\s+AGE\s+HEALTH/)

  // `grail` is now a command: /usr/local/bin (on the PATH) links to this checkout's bin/grail.js
  assert.ok(process.env.PATH?.split(delimiter).includes('/usr/local/bin'), process.env.PATH)
  const found = onPath('grail')
  assert.equal(found, LINK, `grail on the PATH is ${found}`)
  assert.equal(realpathSync(found), join(REPO, 'bin/grail.js'))

  const status = grailByName(['--json', 'status'])
  assert.equal(status.status, 0, status.stderr)
  const parsed = parseJson<{ instances: Array<{ health: string; image: string; createdAt: string }> }>({
    code: status.status ?? -1,
    stdout: status.stdout,
    stderr: status.stderr,
  })
  assert.equal(parsed.instances.length, 3)
  for (const i of parsed.instances) {
    assert.equal(i.health, 'healthy')
    assert.match(i.image, /^hello v\d+$/)
    assert.ok(Date.now() - Date.parse(i.createdAt) < 10 * 60_000)
  }

  const down = grailByName(['down'])
  assert.equal(down.status, 0, down.stderr)
  const gone = grailByName(['--json', 'status'])
  assert.equal(gone.status, 0, gone.stderr)
  assert.deepEqual((JSON.parse(gone.stdout) as { instances: unknown[] }).instances, [])
  await assert.rejects(fetch(url), 'the proxy is stopped')
})
