import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { runcDeleteCommand, umountCommand } from '../../container/sandbox.js'
import { GrailError, isErrno } from '../../errors.js'
import type { GrailHome } from '../../home.js'
import { runCommand } from '../../util/exec.js'
import { mountsUnder, pidAlive } from '../../util/mounts.js'
import { instancePaths, isInstanceId } from './layout.js'
import { netnsName, unwireInstance } from './network.js'
import { readRecord, writeRecord } from './record.js'
import { stageDir } from './userns.js'
import { listContainers, runcKillCommand, runcStartCommand } from './runc.js'

/** Starts a created instance's process and records when. */
export async function startInstance(home: GrailHome, id: string): Promise<void> {
  const p = instancePaths(home, id)
  await runCommand(runcStartCommand({ runcRoot: home.runcRoot, id }))
  const rec = await readRecord(p.dir)
  if (rec) await writeRecord(p.dir, { ...rec, startedAt: new Date().toISOString() })
}

async function containerStatus(home: GrailHome, id: string): Promise<string | undefined> {
  return (await listContainers(home.runcRoot)).get(id)?.status
}

/** How a stop ended: the process was not running, it exited on SIGTERM, or it needed SIGKILL. */
export type StopOutcome = 'not-running' | 'TERM' | 'KILL'

/**
 * SIGTERM, then polls (every 50 ms) until runc reports the container stopped, and sends SIGKILL once
 * `graceMs` has passed. A container that does not exist or has stopped already is left as it is.
 */
export async function stopInstance(home: GrailHome, id: string, graceMs: number): Promise<StopOutcome> {
  instancePaths(home, id)
  const status = await containerStatus(home, id)
  if (status === undefined || status === 'stopped') return 'not-running'
  await runCommand(runcKillCommand({ runcRoot: home.runcRoot, id, signal: 'TERM' }), { allowFailure: true })
  const deadline = Date.now() + graceMs
  let killed = false
  for (;;) {
    const now = await containerStatus(home, id)
    if (now === undefined || now === 'stopped') return killed ? 'KILL' : 'TERM'
    if (!killed && Date.now() >= deadline) {
      await runCommand(runcKillCommand({ runcRoot: home.runcRoot, id, signal: 'KILL' }), {
        allowFailure: true,
      })
      killed = true
    }
    await sleep(50)
  }
}

/** Unmounts everything at or below `dir` (deepest first), then checks that nothing is left mounted. */
async function unmountAll(dir: string): Promise<void> {
  for (const m of await mountsUnder(dir)) await runCommand(umountCommand(m))
  const left = await mountsUnder(dir)
  if (left.length > 0) {
    throw new GrailError('STILL_MOUNTED', `${left.join(', ')} still mounted after umount`, {
      hint: `a process holds it (a shell whose working directory is inside it, an open file: \`fuser -vm ${left[0]}\` names it); stop that process and run the command again`,
    })
  }
}

/** Unmounts and removes a user-namespaced instance's stage dir (its bind mounts of rootfs and sources). */
async function unmountStage(home: GrailHome, id: string): Promise<void> {
  const stage = stageDir(home, id)
  await unmountAll(stage)
  await rm(stage, { recursive: true, force: true })
}

/**
 * Removes an instance: its runc container (killed if running), its overlay mount and its bundle dir with
 * the upper dir and logs. Volume data is not under the bundle dir and stays. Works on half-created
 * instances and on ids that do not exist, so a second call is a no-op.
 */
export async function destroyInstance(home: GrailHome, id: string): Promise<void> {
  const p = instancePaths(home, id)
  if ((await containerStatus(home, id)) !== undefined) {
    await runCommand(runcDeleteCommand({ runcRoot: home.runcRoot, id }))
  }
  // the namespace goes before the dir that records it; a record-less dir still names it by its id
  const rec = await readRecord(p.dir)
  await unwireInstance(rec?.netns ?? netnsName(home, id), rec?.link)
  // rm must never run through a live mount: it would delete through it
  await unmountStage(home, id)
  await unmountAll(p.dir)
  await rm(p.dir, { recursive: true, force: true })
}

/**
 * Cleans what killed runs left behind: staging dirs of a `create` that never reached its rename (their
 * creator's pid is gone), and bundle dirs without a record and without a container (their overlay is
 * unmounted, the dir removed). Instances with a record are left to `list` (state 'missing') and `destroy`.
 * Returns the paths it cleaned.
 */
export async function reconcileLocal(home: GrailHome): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(home.instances)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  }
  const containers = await listContainers(home.runcRoot)
  const cleaned: string[] = []
  for (const name of names) {
    const dir = join(home.instances, name)
    const staging = /^\.new-[a-z0-9-]+-(\d+)$/.exec(name)
    let stale = false
    if (staging) stale = !pidAlive(Number(staging[1]))
    else if (isInstanceId(name)) stale = !containers.has(name) && (await readRecord(dir)) === undefined
    if (!stale) continue
    if (isInstanceId(name)) {
      await unwireInstance(netnsName(home, name), undefined)
      await unmountStage(home, name)
    }
    await unmountAll(dir)
    await rm(dir, { recursive: true, force: true })
    cleaned.push(dir)
  }
  return cleaned
}
