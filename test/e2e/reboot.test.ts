// After a reboot: every process is gone and /run is empty (stage mounts, network namespaces), while
// .grail/ (state, runc's container records, proxy routes) is still on disk. Simulated without a reboot:
// the project's proxy and instances SIGKILLed, their mounts, stage dirs, namespaces and cgroups removed.
// `status` must then say what happened and `apply` bring the service back.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readdir, readFile, rm, rmdir } from 'node:fs/promises'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { isErrno } from '../../src/errors.js'
import { homeAt } from '../../src/home.js'
import { stageDir } from '../../src/runtime/local/userns.js'
import { mountsUnder, pidAlive } from '../../src/util/mounts.js'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

let dir: string | undefined
after(async () => {
  if (dir) await tearDown(dir)
})

/** What a reboot takes from one project: its processes, mounts, stage dirs, namespaces and cgroups. */
async function simulateReboot(project: string): Promise<void> {
  const home = homeAt(join(project, '.grail'))
  const pids: number[] = []
  // the builtin proxy: a keeper and a daemon per service; HAProxy: one keeper and one HAProxy
  for (const proxy of await readdir(join(home.root, 'proxy')).catch(() => [])) {
    for (const f of ['keeper.pid', 'pid'])
      pids.push(Number(await readFile(join(home.root, 'proxy', proxy, f), 'utf8')))
  }
  const plane = join(home.root, 'dataplane')
  const keeper = await readFile(join(plane, 'keeper.pid'), 'utf8').catch(() => undefined)
  if (keeper !== undefined) {
    pids.push(Number(keeper))
    pids.push((JSON.parse(await readFile(join(plane, 'state.json'), 'utf8')) as { pid: number }).pid)
  }
  assert.ok(pids.length > 0, 'a proxy ran')
  const ids = await readdir(home.instances)
  const cgroups: string[] = []
  for (const id of ids) {
    const state = JSON.parse(await readFile(join(home.runcRoot, id, 'state.json'), 'utf8')) as {
      init_process_pid: number
      cgroup_paths: Record<string, string>
    }
    pids.push(state.init_process_pid)
    cgroups.push(...Object.values(state.cgroup_paths))
  }
  for (const pid of pids) process.kill(pid, 'SIGKILL')
  while (pids.some(pidAlive)) await sleep(50)
  for (const id of ids) {
    const stage = stageDir(home, id)
    for (const m of await mountsUnder(stage)) execFileSync('umount', [m])
    await rm(stage, { recursive: true, force: true })
    const record = JSON.parse(await readFile(join(home.instances, id, 'instance.json'), 'utf8')) as {
      netns?: string
    }
    if (record.netns) execFileSync('ip', ['netns', 'delete', record.netns])
  }
  for (const m of await mountsUnder(home.root)) execFileSync('umount', [m])
  for (const cg of cgroups) {
    await rmdir(cg).catch((err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err
    })
  }
}

test('after a reboot, status reports the instances stopped and apply brings the service back', async () => {
  const port = await freePort()
  dir = await busyboxProject({
    'grail.yaml': `project: reboot
${httpdImages()}services:
  web:
    image: web
    replicas: 2
    port: 8080
    publish: ${port}
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
`,
    'site/index.html': 'up\n',
  })
  const url = `http://127.0.0.1:${port}/index.html`
  const up = await grail(['up'], { cwd: dir })
  assert.equal(up.code, 0, up.stderr)
  assert.equal((await (await fetch(url)).text()).trim(), 'up')

  await simulateReboot(dir)

  const status = await grail(['status'], { cwd: dir })
  assert.equal(status.code, 1, status.stdout + status.stderr)
  assert.equal(status.stdout.match(/ stopped /g)?.length, 2, status.stdout)
  assert.match(status.stdout, /proxy local\/web on 127\.0\.0\.1:\d+: restarted/)
  const plan = await grail(['plan'], { cwd: dir })
  assert.equal(plan.stdout.match(/replace +web web-r1-\w+ +crashed: process exited/g)?.length, 2, plan.stdout)

  const apply = await grail(['apply'], { cwd: dir })
  assert.equal(apply.code, 0, apply.stderr)
  assert.equal((await (await fetch(url)).text()).trim(), 'up')
  const again = await grail(['status'], { cwd: dir })
  assert.equal(again.code, 0, again.stderr)
  assert.equal(again.stdout.match(/ healthy /g)?.length, 2, again.stdout)
})
