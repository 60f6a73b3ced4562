import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js'
import { type Dockerd, startDockerd } from '../helpers/dockerd.js'
import { fetchWithRetry, freePort } from '../helpers/net.js'
import { writeFiles } from '../helpers/project.js'
import { pidAlive } from '../../src/util/mounts.js'

describe('startDockerd', () => {
  let d: Dockerd
  let work: string
  let startMs: number

  before(async () => {
    const started = performance.now()
    d = await startDockerd({ name: 'helper' })
    startMs = performance.now() - started
    work = await mkdtemp(join(tmpdir(), 'grail-dh-'))
  })

  after(async () => {
    await d?.stop()
    if (work) await rm(work, { recursive: true, force: true })
  })

  test('answers docker info with its own data root and overlay2', async (t) => {
    t.diagnostic(`dockerd ready in ${Math.round(startMs)} ms`)
    const res = await d.docker(['info', '--format', '{{.Driver}} {{.DockerRootDir}}'])
    assert.equal(res.code, 0, res.stderr)
    assert.equal(res.stdout.trim(), `overlay2 ${join(d.dir, 'data')}`)
  })

  test('builds FROM scratch with BuildKit', async () => {
    const ctx = join(work, 'ctx')
    await writeFiles(ctx, { a: 'hello from grail\n', Dockerfile: 'FROM scratch\nCOPY a /a\n' })
    const build = await d.docker(['build', '--progress=plain', '--tag', 'grail-test/scratch:1', ctx], {
      env: { DOCKER_BUILDKIT: '1' },
    })
    assert.equal(build.code, 0, build.stderr)
    // BuildKit numbers its steps ("#1 [internal] load build definition"); the legacy builder says "Step 1/2".
    assert.match(build.stderr, /^#\d+ \[internal\] load build definition/m)
    assert.doesNotMatch(build.stdout + build.stderr, /Step 1\/2/)

    const created = await d.docker(['create', 'grail-test/scratch:1', '/a'])
    assert.equal(created.code, 0, created.stderr)
    const id = created.stdout.trim()
    const copied = await d.docker(['cp', `${id}:/a`, '-']) // a tar stream holding the one file
    assert.equal(copied.code, 0, copied.stderr)
    assert.match(copied.stdout, /hello from grail\n/)
    assert.equal((await d.docker(['rm', id])).code, 0)
  })

  test('runs an imported busybox image on the host network', async () => {
    const tar = join(work, 'busybox.tar')
    makeBusyboxRootfs(tar)
    const input = await readFile(tar)
    const imported = await d.docker(
      ['import', '--change', 'ENTRYPOINT ["/bin/busybox"]', '-', 'grail-test/bb:1'],
      {
        input,
      },
    )
    assert.equal(imported.code, 0, imported.stderr)

    const port = await freePort()
    const run = await d.docker([
      'run',
      '--detach',
      '--network=host',
      'grail-test/bb:1',
      'sh',
      '-c',
      `mkdir -p /www && echo served-by-busybox > /www/index.html && exec busybox httpd -f -p 127.0.0.1:${port} -h /www`,
    ])
    assert.equal(run.code, 0, run.stderr)
    const body = await fetchWithRetry(`http://127.0.0.1:${port}/`, 5_000)
    assert.equal(body, 'served-by-busybox\n')
  })

  test('stop() ends dockerd, removes its socket, dir and mounts', async (t) => {
    const { pid, socket, dir } = d
    // The httpd container started above is still running (and ignores SIGTERM): stop() has to deal with it.
    const running = await d.docker(['ps', '--quiet'])
    assert.notEqual(running.stdout.trim(), '', 'expected a running container')
    const started = performance.now()
    await d.stop()
    t.diagnostic(`dockerd stopped in ${Math.round(performance.now() - started)} ms`)
    assert.equal(pidAlive(pid), false)
    await assert.rejects(stat(socket), { code: 'ENOENT' })
    await assert.rejects(stat(dir), { code: 'ENOENT' })
    const mountinfo = await readFile('/proc/self/mountinfo', 'utf8')
    assert.equal(mountinfo.includes(dir), false, `mounts left under ${dir}`)
    await d.stop() // idempotent
  })
})
