import { join } from 'node:path'
import { GrailError } from '../../errors.js'
import type { GrailHome } from '../../home.js'
import type { InstanceSpec } from '../types.js'

/** Instance ids as the contract allows them; also the name of the bundle dir and the runc container. */
export const INSTANCE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/

/** Build sandboxes share the runc root; their stale-work cleaner deletes every `grail-b-*` container. */
const BUILD_PREFIX = 'grail-b-'

/** Names that become one path component under the volumes dir (project, environment, volume). */
const PATH_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/** True for ids an instance may have (checked before an id reaches a path or an argv). */
export function isInstanceId(id: string): boolean {
  return INSTANCE_ID.test(id) && !id.startsWith(BUILD_PREFIX)
}

/** Refuses an id that could not be a local instance's, naming it. */
export function checkInstanceId(id: string): void {
  if (!isInstanceId(id)) {
    throw new GrailError('BAD_INSTANCE_ID', `${JSON.stringify(id)} is not an instance id`, {
      hint: `instance ids are lower-case letters, digits and '-', at most 63, not starting with '-' or '${BUILD_PREFIX}'; see \`grail status\``,
    })
  }
}

/** The files of one instance's bundle dir. */
export interface InstancePaths {
  dir: string
  record: string
  config: string
  upper: string
  work: string
  rootfs: string
  files: string
  stdout: string
  stderr: string
}

/** Where an instance's bundle lives: `<home>/instances/<id>/`. The id must have been checked. */
export function instancePaths(home: GrailHome, id: string): InstancePaths {
  checkInstanceId(id)
  const dir = join(home.instances, id)
  return {
    dir,
    record: join(dir, 'instance.json'),
    config: join(dir, 'config.json'),
    upper: join(dir, 'upper'),
    work: join(dir, 'work'),
    rootfs: join(dir, 'rootfs'),
    files: join(dir, 'files'),
    stdout: join(dir, 'stdout.log'),
    stderr: join(dir, 'stderr.log'),
  }
}

/** Refuses a project, environment or volume name that cannot be one path component. */
function checkPathName(what: string, value: string): void {
  if (!PATH_NAME.test(value)) {
    throw new GrailError('BAD_NAME', `${what} name ${JSON.stringify(value)} cannot name a volume directory`, {
      hint: "use letters, digits, '.', '_' and '-'",
    })
  }
}

/** The data dirs of an environment's volumes: `<home>/volumes/<project>/<environment>`. */
export function environmentVolumesPath(home: GrailHome, project: string, environment: string): string {
  checkPathName('project', project)
  checkPathName('environment', environment)
  return join(home.volumes, project, environment)
}

/** A volume's data dir: `<home>/volumes/<project>/<environment>/<name>`, shared by every instance using it. */
export function volumePath(home: GrailHome, project: string, environment: string, name: string): string {
  checkPathName('project', project)
  checkPathName('environment', environment)
  checkPathName('volume', name)
  return join(home.volumes, project, environment, name)
}

/**
 * An absolute path inside the instance, normalised to its relative form ('etc/app.conf'), or a user error:
 * deploy files and volumes must not be the root, contain '..' or be relative.
 */
export function instanceRelPath(path: string, what: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.')
  if (!path.startsWith('/') || parts.length === 0 || parts.includes('..') || path.includes('\0')) {
    throw new GrailError('BAD_PATH', `${what} path ${JSON.stringify(path)} is not an absolute path below /`, {
      hint: "use an absolute path like /etc/app.conf, without '..'",
    })
  }
  return parts.join('/')
}

/** Checks everything of a spec that will become a path or an argument before anything is written. */
export function checkSpec(spec: InstanceSpec): void {
  checkInstanceId(spec.id)
  if (spec.volumes.length > 0) {
    checkPathName('project', spec.labels.project)
    checkPathName('environment', spec.labels.environment)
  }
  for (const path of Object.keys(spec.files)) instanceRelPath(path, 'deploy file')
  for (const v of spec.volumes) {
    instanceRelPath(v.path, `volume ${v.name}`)
    checkPathName('volume', v.name)
  }
}
