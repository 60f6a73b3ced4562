// What isolates a local instance, checked against real runc containers of busybox images: the init that
// runs as PID 1, the image's user, the seccomp filter, resource limits, the network namespace and the
// user namespace. Each case looks at what the instance itself sees or what the host sees of it.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { runBuild } from '../../src/build/index.js'
import type { GrailHome } from '../../src/home.js'
import { homeAt } from '../../src/home.js'
import type { OciStore } from '../../src/oci/store.js'
import { openStore } from '../../src/oci/store.js'
import type { ImageRef, InstanceSpec, RuntimeProvider } from '../../src/runtime/index.js'
import { runcDeleteCommand } from '../../src/container/sandbox.js'
import { createLocalProvider, reconcileLocal } from '../../src/runtime/index.js'
import { stopInstance } from '../../src/runtime/local/lifecycle.js'
import { loadProject } from '../../src/spec/index.js'
import { runCommand } from '../../src/util/exec.js'
import { mountsUnder } from '../../src/util/mounts.js'
import { stageDir } from '../../src/runtime/local/userns.js'
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js'
import { removeDir, tempProject } from '../helpers/project.js'

const HTTPD = ['/bin/sh', '-c', 'exec httpd -f -p "$PORT" -h /srv/www']

const spec = `project: iso
images:
  web:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - run: cat /proc/self/status > /build-status
      - cmd: ${JSON.stringify(HTTPD)}
  orphans:
    base: { rootfs: ./rootfs.tar }
    steps:
      # two children orphaned at once; without an init, PID 1 is 'sleep', which never reaps them
      - cmd: ["/bin/sh", "-c", "(sleep 0 &); (sleep 0 &); exec sleep 1000"]
  www:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - user: www
      - cmd: ["/bin/sh", "-c", "id -u; id -g; exec httpd -f -p \\"$PORT\\" -h /srv/www"]
`

interface Fixture {
  dir: string
  home: GrailHome
  store: OciStore
  images: Record<string, ImageRef>
}

async function fixture(): Promise<Fixture> {
  const dir = await tempProject({ 'grail.yaml': spec, 'site/index.html': 'isolated\n' })
  makeBusyboxRootfs(join(dir, 'rootfs.tar'))
  const home = homeAt(join(dir, '.grail'))
  const built = await runBuild({ project: await loadProject(dir), home })
  const images: Record<string, ImageRef> = {}
  for (const i of built.images) images[i.name] = { name: i.name, version: i.version, digest: i.digest }
  return { dir, home, store: await openStore(home.oci, home.tmp), images }
}

/** GET a URL until it answers or `ms` pass (an instance needs a moment to listen). */
async function fetchText(url: string, ms = 10_000): Promise<string> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      return await (await fetch(url)).text()
    } catch (err) {
      if (Date.now() > deadline) throw err
      await sleep(50)
    }
  }
}

/** The processes in the pid namespace of `pid`, with their state letter (R, S, Z, …) and name. */
async function processesInNamespaceOf(
  pid: number,
): Promise<Array<{ pid: number; state: string; comm: string }>> {
  const ns = await readlink(`/proc/${pid}/ns/pid`)
  const out: Array<{ pid: number; state: string; comm: string }> = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      if ((await readlink(`/proc/${name}/ns/pid`)) !== ns) continue
      const stat = await readFile(`/proc/${name}/stat`, 'utf8')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? ''
      out.push({ pid: Number(name), state, comm })
    } catch {
      // the process ended while we looked
    }
  }
  return out
}

describe('local instance isolation', () => {
  let f: Fixture
  let p: RuntimeProvider
  const scope = { project: 'iso' }
  let n = 0
  const instance = (image: string, extra: Partial<InstanceSpec> = {}): InstanceSpec => ({
    id: `iso-${image}-${++n}`,
    labels: { project: scope.project, environment: 'test', service: image, release: 1 },
    image: f.images[image] as ImageRef,
    env: {},
    files: {},
    volumes: [],
    port: 8080,
    ...extra,
  })
  const started = async (s: InstanceSpec) => {
    const h = await p.create(s)
    await p.start(h)
    return h
  }

  before(async () => {
    f = await fixture()
    p = createLocalProvider({ home: f.home, store: f.store })
  })
  after(async () => {
    for (const o of await p.list(scope)) await p.destroy({ id: o.id, provider: 'local' })
    assert.deepEqual(await mountsUnder(f.dir), [])
    await removeDir(f.dir)
  })

  test('an init is PID 1: SIGTERM stops busybox httpd without waiting for SIGKILL', async () => {
    const s = instance('web')
    const h = await started(s)
    const ep = await p.endpoint(h, 8080)
    assert.equal(await fetchText(`http://${ep.host}:${ep.port}/index.html`), 'isolated\n')
    const cmdline = (await p.exec(h, ['cat', '/proc/1/cmdline'])).stdout.split('\0')
    assert.equal(cmdline[0], '/dev/init')
    // a grace period far beyond what a stop by SIGTERM takes: needing SIGKILL means TERM was ignored
    assert.equal(await stopInstance(f.home, s.id, 60_000), 'TERM')
    await p.destroy(h)
  })

  test('orphaned children are reaped by the init, not left as zombies', async () => {
    const s = instance('orphans', { port: undefined })
    const h = await started(s)
    const pid = (await p.inspect(h)).pid
    assert.ok(pid)
    // settle: the orphans exit at once; give them up to 5 s to be gone (or to linger as zombies)
    const settled = (ps: Array<{ comm: string }>) => ps.length === 2 && ps.some((x) => x.comm === 'sleep')
    let procs = await processesInNamespaceOf(pid)
    for (let i = 0; i < 100 && !settled(procs); i++) {
      await sleep(50)
      procs = await processesInNamespaceOf(pid)
    }
    assert.deepEqual(
      procs.filter((x) => x.state === 'Z'),
      [],
    )
    assert.deepEqual(procs.map((x) => x.comm).sort(), ['init', 'sleep'])
    await p.destroy(h)
  })

  test('a seccomp filter applies to run steps and instances; a syscall Docker refuses fails', async () => {
    const h = await started(instance('web'))
    assert.match((await p.exec(h, ['cat', '/build-status'])).stdout, /^Seccomp:\s+2$/m)
    assert.match((await p.exec(h, ['cat', '/proc/1/status'])).stdout, /^Seccomp:\s+2$/m)
    // a new user namespace needs no capability, only the filter refuses it
    const res = await p.exec(h, ['/bin/busybox', 'unshare', '-U', 'true'])
    assert.notEqual(res.code, 0)
    assert.match(res.stderr, /Operation not permitted/)
    // what an app needs still works: threads and processes (clone), sockets
    assert.equal((await p.exec(h, ['/bin/sh', '-c', '(echo child) | cat'])).stdout, 'child\n')
    await p.destroy(h)
  })

  test('resources: pids and memory limits hold inside the instance; the CPU quota is set', async () => {
    const h = await started(instance('web', { resources: { memory: 32 * 1024 ** 2, pids: 10, cpus: 0.5 } }))
    const forks = await p.exec(h, [
      '/bin/sh',
      '-c',
      'for i in $(/bin/busybox seq 20); do sleep 2 & done; wait',
    ])
    assert.match(forks.stderr, /can't fork/)
    // a 64 MiB buffer in a 32 MiB instance: the kernel kills it (SIGKILL: 137)
    const big = await p.exec(h, ['/bin/busybox', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'])
    assert.equal(big.code, 137, big.stderr)
    const pid = (await p.inspect(h)).pid
    const cgroups = await readFile(`/proc/${pid}/cgroup`, 'utf8')
    const cpuPath = /^\d+:[^:]*\bcpu\b[^:]*:(.*)$/m.exec(cgroups)?.[1]
    assert.ok(cpuPath, cgroups)
    assert.equal(
      (await readFile(join('/sys/fs/cgroup/cpu', cpuPath, 'cpu.cfs_quota_us'), 'utf8')).trim(),
      '50000',
    )
    await p.destroy(h)
  })

  test('each instance has its own network namespace, reached at its endpoint; two listen on one port', async () => {
    const [a, b] = [instance('web'), instance('web')]
    const [ha, hb] = [await started(a), await started(b)]
    const [ea, eb] = [await p.endpoint(ha, 8080), await p.endpoint(hb, 8080)]
    assert.equal(ea.port, 8080)
    assert.equal(eb.port, 8080)
    assert.notEqual(ea.host, eb.host)
    assert.match(ea.host, /^169\.254\./)
    for (const e of [ea, eb])
      assert.equal(await fetchText(`http://${e.host}:${e.port}/index.html`), 'isolated\n')
    // the instance sees its loopback and its link, none of the host's interfaces
    const devs = (await p.exec(ha, ['cat', '/proc/net/dev'])).stdout
    const names = [...devs.matchAll(/^\s*([^\s:]+):/gm)].map((m) => m[1]).sort()
    assert.deepEqual(names, ['eth0', 'lo'])
    const pid = (await p.inspect(ha)).pid
    assert.notEqual(await readlink(`/proc/${pid}/ns/net`), await readlink('/proc/self/ns/net'))
    const rec = JSON.parse(await readFile(join(f.home.instances, a.id, 'instance.json'), 'utf8'))
    assert.ok(existsSync(`/run/netns/${rec.netns}`))
    await p.destroy(ha)
    await p.destroy(hb)
    // destroy takes the namespace and the host end of the link with it
    assert.ok(!existsSync(`/run/netns/${rec.netns}`))
    assert.ok(!existsSync(`/sys/class/net/grl${rec.link.toString(16).padStart(4, '0')}`))
  })

  test('network: host shares the host network namespace and gets a free loopback port', async () => {
    const h = await started(instance('web', { network: 'host' }))
    const pid = (await p.inspect(h)).pid
    assert.equal(await readlink(`/proc/${pid}/ns/net`), await readlink('/proc/self/ns/net'))
    const e = await p.endpoint(h, 8080)
    assert.equal(e.host, '127.0.0.1')
    assert.equal(await fetchText(`http://${e.host}:${e.port}/index.html`), 'isolated\n')
    await p.destroy(h)
  })

  test('a namespace left by a killed run (record lost, container gone) is removed by reconcileLocal', async () => {
    const s = instance('web')
    const h = await started(s)
    const dir = join(f.home.instances, s.id)
    const rec = JSON.parse(await readFile(join(dir, 'instance.json'), 'utf8'))
    await runCommand(runcDeleteCommand({ runcRoot: f.home.runcRoot, id: s.id }))
    await rm(join(dir, 'instance.json'))
    assert.ok(existsSync(`/run/netns/${rec.netns}`))
    assert.deepEqual(await reconcileLocal(f.home), [dir])
    assert.ok(!existsSync(`/run/netns/${rec.netns}`))
    assert.ok(!existsSync(dir))
    await p.destroy(h)
  })

  test("a user namespace maps the instance's ids to the project's unprivileged range", async () => {
    const s = instance('www', { volumes: [{ name: 'data', path: '/data' }] })
    const h = await started(s)
    const { base } = JSON.parse(await readFile(join(f.home.root, 'userns.json'), 'utf8'))
    assert.ok(base >= 1 << 20)
    const map = (await p.exec(h, ['cat', '/proc/self/uid_map'])).stdout.trim().split(/\s+/)
    assert.deepEqual(map, ['0', String(base), '65536'])
    // the image's user www (33) is host uid base+33; what it writes belongs to that uid on the host
    assert.equal((await p.exec(h, ['id', '-u'])).stdout.trim(), '33')
    assert.equal((await p.exec(h, ['/bin/sh', '-c', 'echo x > /data/made && echo y > /tmp/made'])).code, 0)
    const vol = await stat(join(f.home.volumes, 'iso', 'test', 'data', 'made'))
    assert.equal(vol.uid, base + 33)
    const upper = await stat(join(f.home.instances, s.id, 'upper', 'tmp', 'made'))
    assert.equal(upper.uid, base + 33)
    assert.equal(upper.gid, base + 33)
    // the drift scan reports owners as the instance knows them
    const made = (await p.diff(h)).find((c) => c.path === '/tmp/made')
    assert.equal(made?.current?.uid, 33)
    // on the host, the instance's processes run as that unprivileged uid
    const pid = (await p.inspect(h)).pid
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    assert.match(status, new RegExp(`^Uid:\\s+${base + 33}\\s`, 'm'))
    await p.destroy(h)
    // its stage dir (bind mounts for runc inside the namespace) goes with it
    assert.deepEqual(await mountsUnder(stageDir(f.home, s.id)), [])
    assert.ok(!existsSync(stageDir(f.home, s.id)))
  })

  test('userns: host opts out: root in the instance is the host root', async () => {
    const h = await started(instance('web', { userns: 'host' }))
    const map = (await p.exec(h, ['cat', '/proc/self/uid_map'])).stdout.trim().split(/\s+/)
    assert.deepEqual(map, ['0', '0', '4294967295'])
    await p.destroy(h)
  })

  test("the process runs as the image's user, resolved from the image's /etc/passwd", async () => {
    const h = await started(instance('www'))
    const ep = await p.endpoint(h, 8080)
    assert.equal(await fetchText(`http://${ep.host}:${ep.port}/index.html`), 'isolated\n')
    const logs = await p.logs(h)
    assert.match(logs, /^33\n33\n/)
    assert.equal((await p.exec(h, ['id', '-u'])).stdout.trim(), '33')
    await p.destroy(h)
  })
})

test("a build's run steps are held to the image's resources: a step beyond its memory limit fails", async () => {
  const yaml = (resources: string) => `project: limits
images:
  big:
    base: { rootfs: ./rootfs.tar }
${resources}    steps:
      - run: /bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=1
`
  const dir = await tempProject({ 'grail.yaml': yaml('    resources: { memory: 32m, pids: 20 }\n') })
  try {
    makeBusyboxRootfs(join(dir, 'rootfs.tar'))
    const home = homeAt(join(dir, '.grail'))
    await assert.rejects(
      runBuild({ project: await loadProject(dir), home }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'RUN_FAILED')
        assert.match(err.message, /exited with 137/)
        return true
      },
    )
    // without the limit the same step passes
    await writeFile(join(dir, 'grail.yaml'), yaml(''))
    const built = await runBuild({ project: await loadProject(dir), home })
    assert.equal(built.images.length, 1)
    assert.deepEqual(await mountsUnder(dir), [])
  } finally {
    await removeDir(dir)
  }
})
