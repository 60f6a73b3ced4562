import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { GrailError, isErrno } from '../../errors.js'
import type { GrailHome } from '../../home.js'
import type { Digest } from '../../oci/digest.js'
import type { InstanceLabels, InstanceObservation, InstanceState, Scope } from '../types.js'
import { instancePaths, instanceRelPath, isInstanceId } from './layout.js'
import type { InstanceRecord } from './record.js'
import { ANNOTATIONS, readRecord } from './record.js'
import type { RuncContainer } from './runc.js'
import { listContainers } from './runc.js'

function stateOf(c: RuncContainer | undefined): InstanceState {
  if (c === undefined) return 'missing'
  if (c.status === 'created' || c.status === 'stopped') return c.status
  return 'running' // 'running', or 'paused': the process exists
}

async function fromRecord(
  rec: InstanceRecord,
  c: RuncContainer | undefined,
  home: GrailHome,
): Promise<InstanceObservation> {
  const files = instancePaths(home, rec.id).files
  const state = stateOf(c)
  const pid = c && c.pid > 0 && state !== 'stopped' ? c.pid : undefined
  const recorded = [
    ...rec.volumes.map((v) => ({ source: v.source, destination: v.path })),
    ...rec.files.map((f) => ({ source: join(files, instanceRelPath(f, 'deploy file')), destination: f })),
  ]
  // a live process is observed as it is (its environment and mount table), not as it was recorded
  const live = pid === undefined ? undefined : await liveProcess(pid)
  return {
    id: rec.id,
    labels: rec.labels,
    state,
    imageDigest: rec.image.digest,
    env: live?.env ?? rec.env,
    mounts: live ? recorded.filter((m) => live.mountPoints.has(m.destination)) : recorded,
    ...(pid !== undefined ? { pid } : {}),
    ...(rec.startedAt ? { startedAt: rec.startedAt } : {}),
    ...(rec.idBase !== undefined ? { idBase: rec.idBase } : {}),
  }
}

/**
 * The environment and mount points of a running container's init process, from /proc; undefined if it
 * is gone. A process that dies while it is read (killed as `grail status` looks) is gone too: its
 * mountinfo then fails with EINVAL (a zombie has no mount namespace left), its environ with ESRCH.
 */
export async function liveProcess(
  pid: number,
): Promise<{ env: Record<string, string>; mountPoints: Set<string> } | undefined> {
  try {
    // mountinfo first: a process that died fails it with EINVAL, before its environ (ESRCH)
    const mountinfo = await readFile(`/proc/${pid}/mountinfo`, 'utf8')
    // field 5 is the mount point, relative to the process's root, with octal escapes for spaces and such
    const mountPoints = new Set(
      mountinfo
        .split('\n')
        .map((line) => line.split(' ')[4])
        .filter((m): m is string => m !== undefined)
        .map((m) => m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)))),
    )
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8')
    const env: Record<string, string> = {}
    for (const entry of environ.split('\0')) {
      const eq = entry.indexOf('=')
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1)
    }
    return { env, mountPoints }
  } catch (err) {
    if (['ENOENT', 'ESRCH', 'EACCES', 'EINVAL'].some((code) => isErrno(err, code))) return undefined
    throw err
  }
}

/** Labels of a container from its annotations, or undefined when it is not a Grail instance's. */
function labelsOf(c: RuncContainer): InstanceLabels | undefined {
  const a = c.annotations ?? {}
  const project = a[ANNOTATIONS.project]
  if (a[ANNOTATIONS.id] !== c.id || project === undefined) return undefined
  return {
    project,
    environment: a[ANNOTATIONS.environment] ?? '',
    service: a[ANNOTATIONS.service] ?? '',
    release: Number(a[ANNOTATIONS.release] ?? 0),
  }
}

/** A container with no record: what its annotations and bundle config still tell. */
async function fromContainer(c: RuncContainer, labels: InstanceLabels): Promise<InstanceObservation> {
  let env: Record<string, string> = {}
  let mounts: Array<{ source: string; destination: string }> = []
  try {
    const cfg = JSON.parse(await readFile(join(c.bundle, 'config.json'), 'utf8')) as {
      process?: { env?: string[] }
      mounts?: Array<{ type?: string; source: string; destination: string }>
    }
    env = Object.fromEntries(
      (cfg.process?.env ?? []).map((e) => [e.split('=')[0], e.slice(e.indexOf('=') + 1)]),
    )
    mounts = (cfg.mounts ?? [])
      .filter((m) => m.type === 'bind')
      .map((m) => ({ source: m.source, destination: m.destination }))
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
  const state = stateOf(c)
  return {
    id: c.id,
    labels,
    state,
    imageDigest: (c.annotations?.[ANNOTATIONS.image] ?? 'sha256:') as Digest,
    env,
    mounts,
    ...(c.pid > 0 && state !== 'stopped' ? { pid: c.pid } : {}),
    startedAt: c.created,
  }
}

function inScope(l: InstanceLabels, s: Scope): boolean {
  return (
    l.project === s.project &&
    (s.environment === undefined || l.environment === s.environment) &&
    (s.service === undefined || l.service === s.service)
  )
}

/**
 * What exists in a scope: every recorded instance (state from runc, or 'missing' when its container was
 * never created or is gone) and every Grail-annotated container in Grail's runc root that has no record.
 */
export async function listInstances(home: GrailHome, scope: Scope): Promise<InstanceObservation[]> {
  const containers = await listContainers(home.runcRoot)
  const found: InstanceObservation[] = []
  const recorded = new Set<string>()
  let names: string[] = []
  try {
    names = await readdir(home.instances)
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
  for (const name of names.filter(isInstanceId).sort()) {
    const rec = await readRecord(join(home.instances, name))
    if (rec === undefined) continue
    recorded.add(name)
    if (inScope(rec.labels, scope)) found.push(await fromRecord(rec, containers.get(name), home))
  }
  for (const c of containers.values()) {
    const labels = labelsOf(c)
    if (recorded.has(c.id) || labels === undefined || !inScope(labels, scope)) continue
    found.push(await fromContainer(c, labels))
  }
  return found
}

/** One instance, recorded or stray; a user error naming the id when neither exists. */
export async function inspectInstance(home: GrailHome, id: string): Promise<InstanceObservation> {
  const p = instancePaths(home, id)
  const c = (await listContainers(home.runcRoot)).get(id)
  const rec = await readRecord(p.dir)
  if (rec) return await fromRecord(rec, c, home)
  const labels = c && labelsOf(c)
  if (c && labels) return fromContainer(c, labels)
  throw new GrailError('INSTANCE_NOT_FOUND', `instance ${id} does not exist`, {
    hint: 'list the instances of the project with `grail status`',
  })
}

/**
 * When the oldest instance bundle of a home assembled its filesystem (ms): gc removes a retired snapshot
 * or shifted copy only once no instance is older than its retirement. Undefined when there is none.
 */
export async function oldestLocalInstance(home: GrailHome): Promise<number | undefined> {
  let names: string[] = []
  try {
    names = await readdir(home.instances)
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
  let oldest: number | undefined
  for (const name of names.filter(isInstanceId)) {
    const rec = await readRecord(join(home.instances, name))
    // a bundle without a readable record may be anything: as old as can be; a record is written before
    // the create and its lower dirs are verified (and a damaged one retired) later, before the mount
    const at = rec ? Date.parse(rec.mountedAt ?? rec.createdAt) : 0
    if (oldest === undefined || at < oldest) oldest = at
  }
  return oldest
}
