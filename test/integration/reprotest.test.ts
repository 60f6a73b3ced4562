// Debian's reprotest (with diffoscope) as the peer of `grail build --verify`: reprotest builds a busybox
// project twice, the second time with its own variations of the builder (time through faketime, time
// zone, locale, umask, environment, build path, home, exec path, kernel personality, CPUs, ASLR), and
// compares the image digest and the image's files. Where the two disagree, it is written down here.
import assert from 'node:assert/strict'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { runCommand } from '../../src/util/exec.js'
import { GRAIL_BIN, busyboxProject, grail, removeDir } from '../helpers/project.js'

// Not varied: domain_host builds in a user namespace without sudo (Grail, unprivileged there, cannot
// mount its overlays), user_group needs a dedicated build user, fileordering needs disorderfs.
const VARIATIONS = '+all,-domain_host,-user_group,-fileordering'

/** The build reprotest runs: the image digest, and the image's root filesystem as one normalised tar. */
const buildScript = `#!/bin/sh
set -e
'${process.execPath}' '${GRAIL_BIN}' build --json > build.json
'${process.execPath}' -e 'console.log(JSON.parse(require("fs").readFileSync("build.json", "utf8")).images[0].digest)' > image.digest
rm -rf files && umoci raw unpack --image .grail/oci:app:latest files
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf files.tar -C files --exclude=./. .
`

const spec = (run: string) => `project: demo
images:
  app:
    base: { rootfs: ./rootfs.tar }
    steps:
      - run: ${run}
      - cmd: [/bin/sh]
`

async function reprotest(dir: string): Promise<{ code: number; output: string }> {
  await writeFile(join(dir, 'build.sh'), buildScript)
  await chmod(join(dir, 'build.sh'), 0o755)
  const res = await runCommand(
    {
      file: 'reprotest',
      args: [`--variations=${VARIATIONS}`, '-s', '.', './build.sh', 'image.digest files.tar'],
      cwd: dir,
    },
    { allowFailure: true },
  )
  return { code: res.code ?? -1, output: `${res.stdout}${res.stderr}` }
}

describe('reprotest and grail build --verify', () => {
  const dirs: string[] = []
  after(async () => {
    for (const d of dirs) await removeDir(d)
  })

  test('agree on a reproducible busybox image: both pass', async () => {
    const dir = await busyboxProject({
      'grail.yaml': spec('echo built > /built && date -u -d "@$SOURCE_DATE_EPOCH" +%F > /built-at'),
    })
    dirs.push(dir)
    const peer = await reprotest(dir)
    assert.equal(peer.code, 0, peer.output)
    assert.match(peer.output, /Reproduction successful/)
    const res = await grail(['build', '--verify'], { cwd: dir })
    assert.equal(res.code, 0, res.stdout + res.stderr)
  })

  test('disagree on what a step sees of its sandbox: reprotest misses the host name and time zone, --verify does not', async () => {
    const dir = await busyboxProject({
      'grail.yaml': spec(
        'cat /proc/uptime > /stamp && cat /proc/sys/kernel/hostname > /hostname && echo "$TZ" > /tz',
      ),
    })
    dirs.push(dir)
    const peer = await reprotest(dir)
    // both catch the time: reprotest's builds run at least a hundredth of a second apart, and the host's
    // uptime reaches into runc (faketime does not)
    assert.equal(peer.code, 1, peer.output)
    assert.match(peer.output, /\.\/stamp/, 'diffoscope names the file')
    // reprotest varies the builder, and a step sees none of it: its sandbox has a fixed host name and
    // environment, so the two files that leak them come out the same and diffoscope does not name them
    assert.doesNotMatch(peer.output, /\.\/hostname|\.\/tz\b/)
    const res = await grail(['build', '--verify'], { cwd: dir })
    assert.equal(res.code, 1, res.stdout + res.stderr)
    for (const f of ['/stamp', '/hostname', '/tz'])
      assert.match(res.stdout, new RegExp(`^ {2}${f} {2}content`, 'm'))
  })
})
