// `grail images` after `grail capture`: the captured version (its parent is the version the instance
// ran, of the same image) is not "out of date" against that parent; a newer version of the base the
// lineage was built on still makes it, and its parent, out of date.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { busyboxProject, grail, parseJson, tearDown } from '../helpers/project.js'

const spec = (baseStep: string) => `project: capimg
images:
  base:
    base: { rootfs: ./rootfs.tar }
    steps:
      - run: ${baseStep}
  web:
    base: image:base
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, "exec httpd -f -p $PORT -h /srv/www"]
services:
  web:
    image: web
    port: 8080
    healthcheck: { http: /index.html, interval: 200ms }
`

interface Image {
  name: string
  version: number
  outOfDate: string | null
}

describe('images after capture', () => {
  let dir: string
  before(async () => {
    dir = await busyboxProject({ 'grail.yaml': spec('echo one > /etc/base'), 'site/index.html': 'v1\n' })
  })
  after(async () => tearDown(dir))

  test('a captured version is not out of date against its parent; a newer base makes it so', async () => {
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr)
    const st = parseJson<{ instances: Array<{ id: string }> }>(
      await grail(['--json', 'status'], { cwd: dir }),
    )
    const id = st.instances[0]?.id as string
    const fix = await grail(
      [
        'hotfix',
        id,
        '--ttl',
        '10m',
        '--reason',
        'test',
        '--',
        '/bin/sh',
        '-c',
        'echo fixed >> /srv/www/index.html',
      ],
      { cwd: dir },
    )
    assert.equal(fix.code, 0, fix.stderr)
    const cap = await grail(['capture', id, '--no-spec'], { cwd: dir })
    assert.equal(cap.code, 0, cap.stderr)

    const images = async () => parseJson<Image[]>(await grail(['--json', 'images'], { cwd: dir }))
    const find = (all: Image[], name: string, version: number) =>
      all.find((i) => i.name === name && i.version === version)
    let all = await images()
    assert.equal(find(all, 'web', 2)?.outOfDate, null, 'the capture is not out of date against web v1')
    assert.equal(find(all, 'web', 1)?.outOfDate, null)
    const text = await grail(['images'], { cwd: dir })
    assert.equal(text.code, 0, text.stderr)
    assert.doesNotMatch(text.stdout, /out of date/)

    await writeFile(join(dir, 'grail.yaml'), spec('echo two > /etc/base'))
    const build = await grail(['build', 'base'], { cwd: dir })
    assert.equal(build.code, 0, build.stderr)
    all = await images()
    assert.equal(find(all, 'web', 2)?.outOfDate, 'built on base v1, v2 is newer')
    assert.equal(find(all, 'web', 1)?.outOfDate, 'built on base v1, v2 is newer')
  })
})
