import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../../errors.js'
import { PRIVATE_FILE_MODE } from '../../util/private-fs.js'
import { writeAtomic } from '../../util/write-atomic.js'
import type { ImageRef, InstanceLabels, VolumeMount } from '../types.js'

/**
 * What the local provider knows about one instance, written to `instance.json` before anything is mounted
 * or started, so a crash at any later point leaves an instance that `list` reports and `destroy` removes.
 */
export interface InstanceRecord {
  id: string
  labels: InstanceLabels
  image: ImageRef
  /** the environment the process gets (PATH and PORT included) */
  env: Record<string, string>
  /** absolute paths of deploy files, bind-mounted read-only from `files/` */
  files: string[]
  volumes: Array<VolumeMount & { source: string }>
  /** the spec's port, and (network: host) the host port the process really listens on */
  port?: number
  hostPort?: number
  /**
   * network: private (absent in records of older instances, which share the host's network): the named
   * namespace, recorded before it exists, and the link, recorded before it is configured
   */
  netns?: string
  link?: number
  /** userns: private: the host uid (and gid) that uid 0 of the instance maps to; 65536 ids from there */
  idBase?: number
  createdAt: string
  /**
   * written just before the overlay is mounted, after its lower dirs were verified: an instance mounted
   * after a damaged snapshot (or shifted copy) was retired runs on its replacement (gc relies on it)
   */
  mountedAt?: string
  startedAt?: string
}

/** Annotation keys in the runc config: a container whose record is lost is still attributable. */
export const ANNOTATIONS = {
  id: 'dev.grail.instance',
  project: 'dev.grail.project',
  environment: 'dev.grail.environment',
  service: 'dev.grail.service',
  release: 'dev.grail.release',
  image: 'dev.grail.image',
} as const

/** The annotations that label an instance's runc container. */
export function recordAnnotations(rec: InstanceRecord): Record<string, string> {
  return {
    [ANNOTATIONS.id]: rec.id,
    [ANNOTATIONS.project]: rec.labels.project,
    [ANNOTATIONS.environment]: rec.labels.environment,
    [ANNOTATIONS.service]: rec.labels.service,
    [ANNOTATIONS.release]: String(rec.labels.release),
    [ANNOTATIONS.image]: rec.image.digest,
  }
}

/** Writes `instance.json` into `dir` atomically, owner-only (it holds the env). */
export async function writeRecord(dir: string, rec: InstanceRecord): Promise<void> {
  await writeAtomic(join(dir, 'instance.json'), `${JSON.stringify(rec, null, 2)}\n`, {
    mode: PRIVATE_FILE_MODE,
  })
}

/** The record in `dir`, or undefined when there is none (never created, or removed by destroy). */
export async function readRecord(dir: string): Promise<InstanceRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'instance.json'), 'utf8')) as InstanceRecord
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined
    throw err
  }
}
