import { createHash, randomBytes } from 'node:crypto'
import {
  chmod,
  chown,
  lchown,
  lstat,
  mkdir,
  readFile,
  readdir,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises'
import { join } from 'node:path'
import type { LayerRef } from '../../container/snapshots.js'
import {
  checkSnapshotDir,
  extractVerifiedLayer,
  markVerified,
  RETIRED_PREFIX,
  REUSE_CHECK_MS,
} from '../../container/snapshots.js'
import { GrailError, isErrno } from '../../errors.js'
import type { GrailHome } from '../../home.js'
import { digestHex } from '../../oci/digest.js'
import type { OciStore } from '../../oci/store.js'
import type { Command } from '../../util/exec.js'
import { runCommand } from '../../util/exec.js'
import { writeAtomic } from '../../util/write-atomic.js'

/**
 * User namespaces of a project's instances. Every instance of one Grail home (one project) maps its
 * uids and gids 0-65535 to one range of 65536 unprivileged host ids, chosen once per home and kept in
 * `<home>/userns.json`: root in an instance is a host uid that owns nothing outside that project's
 * instance files and volumes. One range per project, not per instance, because runc 1.1 cannot do
 * idmapped mounts: an instance's rootfs must be owned by its mapped ids, so each layer is unpacked once
 * more with its ids shifted (a copy per layer and range), and a range per instance would be a copy per
 * instance. Ranges start at 2^20 (above any subuid range `useradd` hands out, 100000-…) and are spread
 * by a hash of the home's path over 15,000 slots below 2^31.
 */
export const USERNS_SIZE = 65536
const FIRST = 1 << 20
const SLOTS = 15_000

export interface IdRange {
  base: number
  size: number
}

/** The id range of this home's instances: read, or chosen and written on first use (first writer wins). */
export async function homeIdRange(home: GrailHome): Promise<IdRange> {
  const file = join(home.root, 'userns.json')
  const slot = Number.parseInt(createHash('sha256').update(home.root).digest('hex').slice(0, 8), 16) % SLOTS
  const chosen: IdRange = { base: FIRST + slot * USERNS_SIZE, size: USERNS_SIZE }
  try {
    await writeAtomic(file, `${JSON.stringify(chosen)}\n`, { exclusive: true, mode: 0o644 })
    return chosen
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err
  }
  const range = JSON.parse(await readFile(file, 'utf8')) as IdRange
  if (!Number.isInteger(range.base) || range.base < FIRST || range.size !== USERNS_SIZE) {
    throw new GrailError('BAD_STATE', `${file} does not hold a valid id range`, {
      hint: `remove it only if no instance of this project runs; it is chosen again on the next create`,
    })
  }
  return range
}

/** Where user-namespaced instances find their rootfs and bind sources: outside any project's dirs. */
export const STAGE_ROOT = '/run/grail'

/**
 * An instance's stage dir: `/run/grail/<hash of home and id>`. runc sets up the rootfs and the bind
 * mounts from inside the user namespace, as the instance's unprivileged root, which cannot pass
 * through a project dir that is 0700 (as mkdtemp and many home dirs are). So the overlay and the bind
 * sources are bind-mounted here, under dirs any uid may pass through (search, not list: 0711).
 */
export function stageDir(home: GrailHome, id: string): string {
  return join(STAGE_ROOT, createHash('sha256').update(`${home.runcRoot}\0${id}`).digest('hex').slice(0, 16))
}

export function bindMountCommand(source: string, target: string): Command {
  return { file: 'mount', args: ['--bind', source, target] }
}

/**
 * Bind-mounts `source` at `<stage>/<name>` (a dir or a file) and returns that path. The stage dir is
 * made 0711 on first use.
 */
export async function stageMount(stage: string, name: string, source: string): Promise<string> {
  await mkdir(STAGE_ROOT, { recursive: true, mode: 0o711 })
  await mkdir(stage, { recursive: true, mode: 0o711 })
  const target = join(stage, name)
  if ((await stat(source)).isDirectory()) await mkdir(target, { recursive: true, mode: 0o711 })
  else await writeFile(target, '', { flag: 'a' })
  await runCommand(bindMountCommand(source, target))
  return target
}

/**
 * Lets any uid pass through (search, not list) the dirs on the way to an instance's bundle and volumes:
 * runc sets up the rootfs and bind mounts from inside the user namespace, where the instance's root is
 * an unprivileged host uid. Docker's userns-remap does the same (0711) to its data root. Names and
 * contents stay private: files with secrets are 0600 and nothing here grants read or list.
 */
export async function allowTraverse(dirs: readonly string[]): Promise<void> {
  for (const dir of dirs) {
    const st = await stat(dir)
    if ((st.mode & 0o001) === 0) await chmod(dir, (st.mode & 0o7777) | 0o111)
  }
}

/** Where the copy of a layer shifted to `base` lives, relative to the snapshots dir (overlay lowerdir). */
export function shiftedSnapshotRel(base: number, layer: LayerRef): string {
  return join('..', 'shifted', String(base), digestHex(layer.diffId))
}

const pending = new Map<string, Promise<void>>()

/**
 * The image's layers (topmost first, as overlay wants them) unpacked with every owner shifted by
 * `base`, each once per range; the blob is hashed while it streams and a copy appears (by rename) only
 * when it matched. An existing copy is verified first (or a verification of the last minute reused,
 * as for shared snapshots): a damaged one is moved aside, never rewritten (running instances may have
 * it as a lower dir), and unpacked again. Returns lowerdir names relative to the snapshots dir.
 */
export async function ensureShiftedLowers(
  home: GrailHome,
  store: OciStore,
  layers: readonly LayerRef[],
  base: number,
): Promise<string[]> {
  const out: string[] = []
  for (const layer of layers) {
    const rel = shiftedSnapshotRel(base, layer)
    const dest = join(home.snapshots, rel)
    let p = pending.get(dest)
    if (!p) {
      p = ensureShifted(home, store, layer, dest, base).finally(() => pending.delete(dest))
      pending.set(dest, p)
    }
    await p
    out.unshift(rel)
  }
  if (out.length === 0) {
    // overlay needs a lower dir; an empty one owned by the range's root
    const empty = join(home.root, 'shifted', String(base), 'empty')
    await mkdir(empty, { recursive: true })
    await chown(empty, base, base)
    out.push(join('..', 'shifted', String(base), 'empty'))
  }
  return out
}

async function ensureShifted(
  home: GrailHome,
  store: OciStore,
  layer: LayerRef,
  dest: string,
  base: number,
): Promise<void> {
  const since = Date.now() - REUSE_CHECK_MS
  const damage = await checkSnapshotDir(home, store, layer, dest, { since, idShift: base })
  if (damage !== undefined && damage.length === 0) return
  if (damage !== undefined) {
    const name = `${RETIRED_PREFIX}${digestHex(layer.diffId)}-${Date.now()}`
    // another process may have retired it first
    await rename(dest, join(home.root, 'shifted', String(base), name)).catch((err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err
    })
  }
  await unpackShifted(home, store, layer, dest, base)
  markVerified(dest)
}

/**
 * What the extractor made that no entry describes (parent dirs a layer leaves out, overlay whiteout
 * devices) belongs to the host's root: unmapped in the namespace, so even the instance's root could not
 * write there. It goes to the range's root, as the layer's own root-owned entries did.
 */
export async function shiftLeftovers(dir: string, base: number): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name)
    const st = await lstat(path)
    if (st.uid === 0 && st.gid === 0) await lchown(path, base, base)
    if (st.isDirectory()) await shiftLeftovers(path, base)
  }
}

async function unpackShifted(
  home: GrailHome,
  store: OciStore,
  layer: LayerRef,
  dest: string,
  base: number,
): Promise<void> {
  const dir = join(home.root, 'shifted', String(base))
  await mkdir(dir, { recursive: true })
  const tmp = join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`)
  await mkdir(tmp)
  // the layer's root dir, if the tar has no entry for it, belongs to the range's root
  await chown(tmp, base, base)
  await extractVerifiedLayer(store, layer, tmp, { idOffset: base })
  try {
    await shiftLeftovers(tmp, base)
  } catch (err) {
    await rm(tmp, { recursive: true, force: true })
    throw err
  }
  try {
    await rename(tmp, dest)
  } catch (err) {
    await rm(tmp, { recursive: true, force: true })
    if (!isErrno(err, 'ENOTEMPTY') && !isErrno(err, 'EEXIST')) throw err
  }
}
