// `grail build --verify` against steps that leak what they see into the image: the current time in
// seconds (however the two builds fall against a second boundary), the monotonic clock, the host name,
// the time zone, the locale, the order of the environment and the working directory's path are each
// caught and named with their step; a step that leaks nothing, or only what the spec fixes, passes.
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, describe, test } from 'node:test'
import type { CliResult } from '../helpers/project.js'
import { busyboxProject, grail, removeDir } from '../helpers/project.js'

const spec = (steps: string[]) => `project: demo
images:
  app:
    base: { rootfs: ./rootfs.tar }
    steps:
${steps.map((s) => `      - ${s}`).join('\n')}
      - cmd: [/bin/sh]
`

/** The files `--verify` names, as `path what (step)` without the layer number. */
function named(res: CliResult): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of res.stdout.split('\n')) {
    const m = /^ {2}(\/\S+) {2}(.+?) {2}\(layer \d+: (.+)\)$/.exec(line)
    if (m?.[1] && m[2] && m[3]) out.set(m[1], `${m[2]} (${m[3]})`)
  }
  return out
}

/** Waits until the wall clock has just entered a new second (within 20 ms), whatever the load. */
async function startOfSecond(): Promise<void> {
  for (;;) {
    await sleep(1000 - (Date.now() % 1000))
    if (Date.now() % 1000 < 20) return
  }
}

describe('grail build --verify varies what a step can see', () => {
  const dirs: string[] = []
  after(async () => {
    for (const d of dirs) await removeDir(d)
  })
  const project = async (steps: string[]) => {
    const dir = await busyboxProject({ 'grail.yaml': spec(steps) })
    dirs.push(dir)
    return dir
  }

  test('a step that writes the time in seconds fails --verify naming /stamp, however the builds fall', async () => {
    const dir = await project(['run: date +%s > /stamp'])
    // three times at the start of a second, where a fast pair of builds fits into the same second;
    // the first run builds, the later ones reuse that version (built seconds before) as the first build
    for (let i = 0; i < 3; i++) {
      await startOfSecond()
      const res = await grail(['build', '--verify'], { cwd: dir })
      assert.equal(res.code, 1, `attempt ${i + 1}:\n${res.stdout}${res.stderr}`)
      assert.match(res.stdout, /NOT reproducible app/)
      assert.deepEqual([...named(res)], [['/stamp', 'content (run date +%s > /stamp)']], res.stdout)
      assert.match(res.stderr, /app: a second build from nothing gave a different image/)
      assert.match(res.stderr, /SOURCE_DATE_EPOCH/)
    }
  })

  test('a step that reads the monotonic clock coarsely is caught: the second build runs a year ahead', async () => {
    // uptime in thousands of seconds: two builds a few seconds apart share it, unless the clock is moved
    const dir = await project(['run: echo $(( $(busybox cut -d. -f1 /proc/uptime) / 1000 )) > /uptime-ks'])
    const res = await grail(['build', '--verify'], { cwd: dir })
    assert.equal(res.code, 1, res.stdout + res.stderr)
    assert.deepEqual([...named(res).keys()], ['/uptime-ks'])
  })

  test('a plain `grail build` just before `--verify` (a cached first build) is caught as well', async () => {
    const dir = await project(['run: date +%s > /stamp'])
    await startOfSecond()
    assert.equal((await grail(['build'], { cwd: dir })).code, 0)
    const res = await grail(['build', '--verify'], { cwd: dir })
    assert.equal(res.code, 1, res.stdout + res.stderr)
    assert.deepEqual([...named(res).keys()], ['/stamp'])
  })

  test('the clock, host name, time zone, locale and working directory are each caught, with their step', async () => {
    const dir = await project([
      'run: busybox cut -d. -f1 /proc/uptime > /uptime',
      'run: cat /proc/sys/kernel/hostname > /hostname',
      'run: date +%H:%M > /local-time && echo "$TZ" > /tz',
      'run: echo "$LANG $LC_ALL" > /locale',
      'workdir: /srv',
      'run: pwd > /pwd && echo here > relative',
    ])
    const res = await grail(['build', '--verify'], { cwd: dir })
    assert.equal(res.code, 1, res.stdout + res.stderr)
    const files = named(res)
    assert.deepEqual([...files.keys()].sort(), [
      '/hostname',
      '/local-time',
      '/locale',
      '/pwd',
      '/tz',
      '/uptime',
    ])
    assert.equal(files.get('/hostname'), 'content (run cat /proc/sys/kernel/hostname > /hostname)')
    assert.equal(files.get('/pwd'), 'content (run pwd > /pwd && echo here > relative)')
    // the step's relative write lands in the same place in both builds: /srv/relative is not named
  })

  test('the order of the environment is caught; what the image sets is kept as it is', async () => {
    const dir = await project([
      'env: { TZ: UTC, LANG: C.UTF-8, A: "1", B: "2" }',
      'run: echo "$TZ $LANG $A $B" > /fixed',
      'run: env > /environ',
    ])
    const res = await grail(['build', '--verify'], { cwd: dir })
    assert.equal(res.code, 1, res.stdout + res.stderr)
    assert.deepEqual([...named(res).keys()], ['/environ'])
  })

  test('a step that leaks nothing passes: files made under the fixed umask, SOURCE_DATE_EPOCH as the time', async () => {
    const dir = await project([
      'run: echo built > /built && mkdir /made && umask > /umask',
      'run: date -u -d "@$SOURCE_DATE_EPOCH" +%F > /built-at',
    ])
    const res = await grail(['build', '--verify'], { cwd: dir })
    assert.equal(res.code, 0, res.stdout + res.stderr)
    assert.match(res.stdout, /verified app/)
  })
})
