import { readFile } from 'node:fs/promises'
import { lookupInLowers } from '../../container/snapshots.js'
import { GrailError } from '../../errors.js'
import type { GrailHome } from '../../home.js'
import { sha256File } from '../../oci/digest.js'
import type { OciStore } from '../../oci/store.js'
import type { PackEntry } from '../../oci/tar/index.js'
import { OPAQUE_WHITEOUT, scanDir, WHITEOUT_PREFIX } from '../../oci/tar/index.js'
import type { CurrentFile, FileChange } from '../types.js'
import { unpackImage } from './image.js'
import { instancePaths, instanceRelPath } from './layout.js'
import { readRecord } from './record.js'
import { USERNS_SIZE } from './userns.js'

/** Mount destinations of the runtime config (proc, dev, sys, resolv.conf, volumes, deploy files). */
async function mountPoints(configPath: string): Promise<string[]> {
  const cfg = JSON.parse(await readFile(configPath, 'utf8')) as { mounts?: Array<{ destination: string }> }
  return (cfg.mounts ?? []).map((m) => instanceRelPath(m.destination, 'mount'))
}

const within = (path: string, root: string) => path === root || path.startsWith(`${root}/`)

/**
 * An instance's file changes against its image, read from its overlay upper dir alone (O(changed files)):
 * a whiteout is D; any other entry is A when no image layer has the path, else C. Mount points are not
 * content: a mount destination, anything under it, and a directory that does not exist in the image but
 * holds a mount point (runc made it) are left out, which covers volumes, deploy files, /proc, /dev, /sys.
 * Directories appear only when they were added or deleted, never because a child changed; a directory
 * deleted and re-created (overlay "opaque") is reported as C.
 */
export async function diffInstance(home: GrailHome, store: OciStore, id: string): Promise<FileChange[]> {
  const p = instancePaths(home, id)
  const rec = await readRecord(p.dir)
  if (rec === undefined) {
    throw new GrailError('INSTANCE_NOT_FOUND', `instance ${id} has no record to diff against`, {
      hint: 'it was destroyed, or its record was lost; replace the instance',
    })
  }
  const { lowers } = await unpackImage(home, store, rec.image.digest, undefined, { verify: false })
  let mounts: string[] = []
  try {
    mounts = await mountPoints(p.config)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    mounts = [...rec.files, ...rec.volumes.map((v) => v.path)].map((m) => instanceRelPath(m, 'mount'))
  }
  const entries = await scanDir(p.upper, {
    overlayUpper: true,
    exclude: (rel) => mounts.some((m) => within(rel, m)),
  })
  const changes: FileChange[] = []
  for (const e of entries) {
    const slash = e.path.lastIndexOf('/')
    const dir = e.path.slice(0, slash + 1)
    const name = e.path.slice(slash + 1)
    if (name === OPAQUE_WHITEOUT) {
      const target = dir.slice(0, -1)
      if (await lookupInLowers(lowers, target)) changes.push({ kind: 'C', path: `/${target}` })
      continue
    }
    if (name.startsWith(WHITEOUT_PREFIX)) {
      changes.push({ kind: 'D', path: `/${dir}${name.slice(WHITEOUT_PREFIX.length)}` })
      continue
    }
    const inImage = await lookupInLowers(lowers, e.path)
    if (e.type === 'directory') {
      if (inImage) continue // copied up because something below it changed
      if (mounts.some((m) => within(m, e.path))) continue // made by runc as a mount point's parent
      changes.push({ kind: 'A', path: `/${e.path}`, current: await currentOf(e, rec.idBase) })
      continue
    }
    changes.push({ kind: inImage ? 'C' : 'A', path: `/${e.path}`, current: await currentOf(e, rec.idBase) })
  }
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/**
 * The entry as the instance has it now; regular files are hashed (only changed files are ever read).
 * Under a user namespace the owners are the instance's own (host ids minus the range's base), as the
 * image's manifest and `capture` know them.
 */
async function currentOf(e: PackEntry, idBase: number | undefined): Promise<CurrentFile> {
  const inside = (id: number) =>
    idBase !== undefined && id >= idBase && id < idBase + USERNS_SIZE ? id - idBase : id
  const out: CurrentFile = {
    type: e.type,
    mode: e.mode,
    uid: inside(e.uid),
    gid: inside(e.gid),
    size: e.type === 'file' ? e.size : 0,
  }
  if (e.linkname !== undefined) out.linkname = e.linkname
  // the content is read through the provider's readFile, never from this host path
  if (e.source !== undefined && e.type === 'file') {
    out.sha256 = (await sha256File(e.source)).digest.slice('sha256:'.length)
  }
  return out
}
