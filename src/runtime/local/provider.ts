import { readdir, readFile, rm } from 'node:fs/promises'
import { GrailError, isErrno } from '../../errors.js'
import type { GrailHome } from '../../home.js'
import type { OciStore } from '../../oci/store.js'
import { runCommand } from '../../util/exec.js'
import type { InstanceHandle, RuntimeProvider } from '../types.js'
import { createInstance } from './create.js'
import { diffInstance } from './diff.js'
import { unpackImage } from './image.js'
import { checkInstanceId, environmentVolumesPath, instancePaths } from './layout.js'
import { destroyInstance, reconcileLocal, startInstance, stopInstance } from './lifecycle.js'
import { inspectInstance, listInstances } from './observe.js'
import { linkAddresses } from './network.js'
import { readInstanceFile } from './read-file.js'
import { readRecord } from './record.js'
import { runcExecCommand } from './runc.js'
import { watchLocal } from './watch.js'
import { destroyAllLocal } from './wipe.js'

export interface LocalProviderOptions {
  home: GrailHome
  store: OciStore
}

async function readLog(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return ''
    throw err
  }
}

/** The handle's id, checked, for a handle this provider made. */
function idOf(h: InstanceHandle): string {
  if (h.provider !== 'local') {
    throw new Error(`handle of instance ${h.id} belongs to provider ${h.provider}, not local; this is a bug`)
  }
  return h.id
}

/**
 * The embedded provider: instances are runc containers over overlay mounts of the image's snapshots, with
 * no daemon. Everything about an instance lives in `<home>/instances/<id>/` (record, runtime bundle, upper
 * dir, logs) and in Grail's own runc root, so any later process finds, stops or removes what an earlier
 * one created. Each instance has a network namespace of its own, linked to the host on a private
 * point-to-point link (network.ts); with `network: host` it shares the host's and gets a free loopback port.
 */
export function createLocalProvider(opts: LocalProviderOptions): RuntimeProvider {
  const { home, store } = opts
  return {
    name: 'local',
    checkId: checkInstanceId,
    async prepareImage(image) {
      await unpackImage(home, store, image.digest)
    },
    async create(spec) {
      await createInstance(home, store, spec)
      return { id: spec.id, provider: 'local' }
    },
    start: (h) => startInstance(home, idOf(h)),
    watch: (scope, onChange) => watchLocal(home, scope, onChange),
    async stop(h, o) {
      await stopInstance(home, idOf(h), o.graceMs)
    },
    destroy: (h) => destroyInstance(home, idOf(h)),
    list: (scope) => listInstances(home, scope),
    inspect: (h) => inspectInstance(home, idOf(h)),
    diff: (h) => diffInstance(home, store, idOf(h)),
    async exec(h, argv) {
      if (argv.length === 0) throw new Error('exec needs a command; this is a bug in the caller')
      const res = await runCommand(runcExecCommand({ runcRoot: home.runcRoot, id: idOf(h), argv }), {
        allowFailure: true,
      })
      return { code: res.code, stdout: res.stdout.toString('utf8'), stderr: res.stderr.toString('utf8') }
    },
    async endpoint(h, port) {
      const rec = await readRecord(instancePaths(home, idOf(h)).dir)
      if (rec === undefined) {
        throw new GrailError('INSTANCE_NOT_FOUND', `instance ${h.id} has no record`, {
          hint: 'it was destroyed, or created by an older Grail; replace it',
        })
      }
      if (rec.netns !== undefined) {
        if (rec.link === undefined) {
          throw new GrailError('INSTANCE_NOT_READY', `instance ${h.id} has no network link yet`, {
            hint: 'its create did not finish; destroy it (`grail apply` replaces it)',
          })
        }
        return { host: linkAddresses(rec.link).instance, port }
      }
      // network: host: the process listens on the host port it was given as PORT
      return { host: '127.0.0.1', port: port === rec.port && rec.hostPort ? rec.hostPort : port }
    },
    async logs(h, o = {}) {
      const p = instancePaths(home, idOf(h))
      // two files, no timestamps: stdout first, then stderr
      const text = (await readLog(p.stdout)) + (await readLog(p.stderr))
      if (o.tailLines === undefined) return text
      const lines = text.split('\n')
      if (lines.at(-1) === '') lines.pop()
      return lines
        .slice(-o.tailLines)
        .map((l) => `${l}\n`)
        .join('')
    },
    readFile: (h, path) => readInstanceFile(home, idOf(h), path),
    // a half-made bundle has no record, so nothing tells its project: the whole home is cleaned
    reconcile: () => reconcileLocal(home),
    async removeVolumes(scope) {
      const dir = environmentVolumesPath(home, scope.project, scope.environment)
      let names: string[] = []
      try {
        names = (await readdir(dir)).sort()
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return []
        throw err
      }
      await rm(dir, { recursive: true, force: true })
      return names
    },
    destroyAll: (o) => destroyAllLocal(home, o.graceMs),
  }
}
