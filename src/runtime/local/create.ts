import { chmod, chown, mkdir, readdir, rename, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { basename, dirname, join } from 'node:path'
import { DEFAULT_PATH_ENV, resolveUser } from '../../container/process.js'
import { overlayMountCommand, runtimeConfig } from '../../container/sandbox.js'
import { GrailError, isErrno } from '../../errors.js'
import type { GrailHome } from '../../home.js'
import type { OciStore } from '../../oci/store.js'
import { checkResources } from '../../util/cgroups.js'
import { runCommand } from '../../util/exec.js'
import {
  makePrivateDir,
  PRIVATE_DIR_MODE,
  PRIVATE_FILE_MODE,
  writePrivateFile,
} from '../../util/private-fs.js'
import type { InstanceSpec } from '../types.js'
import type { UnpackedImage } from './image.js'
import { unpackImage } from './image.js'
import { instanceInit } from './init.js'
import { destroyInstance } from './lifecycle.js'
import { checkSpec, instancePaths, instanceRelPath, isInstanceId, volumePath } from './layout.js'
import type { InstanceRecord } from './record.js'
import { readRecord, recordAnnotations, writeRecord } from './record.js'
import { netnsName, wireInstance } from './network.js'
import {
  USERNS_SIZE,
  allowTraverse,
  ensureShiftedLowers,
  homeIdRange,
  stageDir,
  stageMount,
} from './userns.js'
import { listContainers, runDetached, runcCreateCommand } from './runc.js'

/** A port nothing listens on right now on loopback, and no other instance of this home was given. */
async function freePort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer()
      srv.once('error', reject)
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address()
        srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0))
      })
    })
    if (port > 0 && !taken.has(port)) return port
  }
  throw new GrailError(
    'NO_FREE_PORT',
    `no free loopback port for a new instance (20 tries; ${taken.size} taken by this project's instances)`,
    {
      hint: 'the ephemeral port range (/proc/sys/net/ipv4/ip_local_port_range) is nearly used up: take down instances or projects that are not needed (`grail down`), or widen the range, and retry',
    },
  )
}

/** Host ports recorded by the instances of this home, so two instances never get the same one. */
async function recordedPorts(home: GrailHome): Promise<Set<number>> {
  const ports = new Set<number>()
  let names: string[] = []
  try {
    names = await readdir(home.instances)
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
  for (const name of names.filter(isInstanceId)) {
    const rec = await readRecord(join(home.instances, name))
    if (rec?.hostPort !== undefined) ports.add(rec.hostPort)
  }
  return ports
}

/**
 * Records a new instance: its bundle dir appears (by rename of a staging dir) already holding
 * `instance.json`, so there is never an instance dir without a record. A dir of that id is refused:
 * instances are always fresh.
 */
async function recordInstance(home: GrailHome, rec: InstanceRecord): Promise<void> {
  await makePrivateDir(home.instances)
  const staging = join(home.instances, `.new-${rec.id}-${process.pid}`)
  await rm(staging, { recursive: true, force: true })
  // 0700: deploy files may hold secrets; the container reaches its files through its own mounts
  await mkdir(staging, { mode: 0o700 })
  await writeRecord(staging, rec)
  try {
    await rename(staging, instancePaths(home, rec.id).dir)
  } catch (err) {
    await rm(staging, { recursive: true, force: true })
    if (!isErrno(err, 'ENOTEMPTY') && !isErrno(err, 'EEXIST')) throw err
    throw new GrailError('INSTANCE_EXISTS', `instance ${rec.id} already exists`, {
      hint: 'instances are never reused: destroy it first or choose a new id',
    })
  }
}

export interface CreateOptions {
  /** tests only: stop as a killed process would, after writing the record or after mounting the rootfs */
  crashAfter?: 'record' | 'mount'
}

/**
 * Creates an instance: record first, then the overlay rootfs (image snapshots + its own upper dir), the
 * deploy files and volume dirs, the runtime config, and `runc create` with its output going to the log
 * files. The process waits for `start`. If a step fails it is destroyed again before the error is thrown.
 */
export async function createInstance(
  home: GrailHome,
  store: OciStore,
  spec: InstanceSpec,
  opts: CreateOptions = {},
): Promise<void> {
  checkSpec(spec)
  if (spec.resources) await checkResources(spec.resources, `instance ${spec.id}`)
  const image = await unpackImage(home, store, spec.image.digest, spec.image)
  const hostNetwork = spec.network === 'host'
  // on the host's network two instances cannot both listen on the spec's port: each gets a free one
  const hostPort =
    spec.port === undefined || !hostNetwork ? undefined : await freePort(await recordedPorts(home))
  const env: Record<string, string> = { ...spec.env }
  if (env.PATH === undefined) env.PATH = DEFAULT_PATH_ENV.slice('PATH='.length)
  if (hostPort !== undefined) env.PORT = String(hostPort)
  else if (spec.port !== undefined) env.PORT = String(spec.port)
  const idRange = spec.userns === 'host' ? undefined : await homeIdRange(home)
  const volumes = spec.volumes.map((v) => ({
    ...v,
    source: volumePath(home, spec.labels.project, spec.labels.environment, v.name),
  }))
  const rec: InstanceRecord = {
    id: spec.id,
    labels: spec.labels,
    image: spec.image,
    env,
    files: Object.keys(spec.files),
    volumes,
    ...(spec.port === undefined ? {} : { port: spec.port }),
    ...(hostPort === undefined ? {} : { hostPort }),
    ...(hostNetwork ? {} : { netns: netnsName(home, spec.id) }),
    ...(idRange ? { idBase: idRange.base } : {}),
    createdAt: new Date().toISOString(),
  }
  await recordInstance(home, rec)
  if (opts.crashAfter === 'record') return
  try {
    await bundleInstance(home, store, spec, rec, image, opts)
  } catch (err) {
    // a failed create leaves nothing behind; a crash instead leaves a record that destroy cleans up
    await destroyInstance(home, spec.id)
    throw err
  }
}

/**
 * Who may read a deploy file: only the instance's own user (0600, owned by it), since the file is
 * bind-mounted into the instance, where the app reads it, and may hold a secret. The one place that
 * decides it; with a user namespace, `owner` is the host uid the instance's user maps to.
 */
export async function giveDeployFile(path: string, owner: { uid: number; gid: number }): Promise<void> {
  await chown(path, owner.uid, owner.gid)
  await chmod(path, PRIVATE_FILE_MODE)
}

/** Everything after the record: deploy files, overlay, volumes, runtime config, `runc create`. */
async function bundleInstance(
  home: GrailHome,
  store: OciStore,
  spec: InstanceSpec,
  rec: InstanceRecord,
  image: UnpackedImage,
  opts: CreateOptions,
): Promise<void> {
  const p = instancePaths(home, spec.id)
  if (/[:,]/.test(p.dir) || /[:,]/.test(home.snapshots)) {
    throw new GrailError('BAD_HOME_PATH', `Grail's state directory ${home.root} contains ':' or ','`, {
      hint: 'overlayfs cannot take such paths; set GRAIL_HOME to a directory without them',
    })
  }
  for (const d of [p.upper, p.work, p.rootfs, p.files]) await mkdir(d)
  const base = rec.idBase
  if (base !== undefined) {
    // the merged root takes the upper dir's owner: the instance's root, whatever host uid that is
    await chown(p.upper, base, base)
    await allowTraverse([p.files])
  }

  // lower dirs by name relative to the snapshots dir keep the mount options short (one page at most);
  // a user-namespaced instance gets copies of them owned by its id range (runc 1.1 has no idmapped mounts)
  const lowers =
    base === undefined
      ? image.lowers.map((l) => basename(l))
      : await ensureShiftedLowers(home, store, image.layers, base)
  rec.mountedAt = new Date().toISOString()
  await writeRecord(p.dir, rec)
  const mount = overlayMountCommand({
    lowers,
    upper: p.upper,
    work: p.work,
    target: p.rootfs,
  })
  await runCommand({ ...mount, cwd: home.snapshots })
  if (opts.crashAfter === 'mount') return

  const cfg = image.config.config
  const argv = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])]
  if (argv.length === 0) {
    throw new GrailError('NO_COMMAND', `image ${spec.image.name} v${spec.image.version} has no command`, {
      hint: 'add a `cmd` or `entrypoint` step to the image',
    })
  }
  const { uid, gid } = await resolveUser(p.rootfs, cfg.User)
  // the host ids of the instance's user: shifted into the range under a user namespace
  const owner = { uid: uid + (base ?? 0), gid: gid + (base ?? 0) }
  const binds: Array<{ source: string; destination: string; readonly: boolean }> = []
  for (const [path, content] of Object.entries(spec.files)) {
    const source = join(p.files, instanceRelPath(path, 'deploy file'))
    // under a user namespace runc reaches them as an unprivileged uid: parents it may pass, not list
    await mkdir(dirname(source), { recursive: true, mode: base === undefined ? PRIVATE_DIR_MODE : 0o711 })
    await writePrivateFile(source, content)
    // the app reads its deploy files as its own user, which on the host may be a uid of the range
    await giveDeployFile(source, owner)
    binds.push({ source, destination: path, readonly: true })
  }
  for (const v of rec.volumes) {
    // a new volume belongs to the instance's user, so a non-root process can write its data
    if ((await mkdir(v.source, { recursive: true })) !== undefined)
      await chown(v.source, owner.uid, owner.gid)
    binds.push({ source: v.source, destination: v.path, readonly: false })
  }
  let root = p.rootfs
  if (base !== undefined) {
    // runc, inside the user namespace, reaches everything through the stage dir (see stageDir)
    const stage = stageDir(home, spec.id)
    root = await stageMount(stage, 'rootfs', p.rootfs)
    const files = await stageMount(stage, 'files', p.files)
    for (const b of binds) {
      if (b.source.startsWith(`${p.files}/`)) b.source = join(files, b.source.slice(p.files.length + 1))
    }
    for (const [i, v] of rec.volumes.entries()) {
      const staged = await stageMount(stage, `volume-${i}`, v.source)
      for (const b of binds) if (b.source === v.source) b.source = staged
    }
  }
  const config = runtimeConfig(
    root,
    {
      argv,
      env: Object.entries(rec.env).map(([k, v]) => `${k}=${v}`),
      cwd: cfg.WorkingDir || '/',
      uid,
      gid,
      // false: a namespace of its own (loopback only until it is wired below)
      network: rec.netns === undefined,
      hostname: spec.id,
    },
    {
      binds,
      annotations: recordAnnotations(rec),
      init: await instanceInit(),
      ...(spec.resources ? { resources: spec.resources } : {}),
      ...(base === undefined ? {} : { idMap: { base, size: USERNS_SIZE } }),
    },
  )
  await writePrivateFile(p.config, JSON.stringify(config, null, 2))
  await mkdir(home.runcRoot, { recursive: true })
  await runDetached(runcCreateCommand({ runcRoot: home.runcRoot, bundle: p.dir, id: spec.id }), p)
  if (rec.netns !== undefined) {
    // wired while the container waits for `start`, so the process finds its network in place
    const pid = (await listContainers(home.runcRoot)).get(spec.id)?.pid
    if (!pid) throw new Error(`runc created ${spec.id} but reports no pid; this is a bug`)
    await wireInstance({
      netns: rec.netns,
      pid,
      onLink: async (link) => {
        rec.link = link
        await writeRecord(p.dir, rec)
      },
    })
  }
}
