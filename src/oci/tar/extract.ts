import { constants } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { open } from 'node:fs/promises'
import { isErrno } from '../../errors.js'
import { createEntry } from './create-entry.js'
import { fromHeader } from './headers.js'
import { baseOf, joinRel, parentOf, sortByPath, unsafeTar } from './paths.js'
import { readTar } from './read.js'
import { openSafeRoot } from './safe-root.js'
import type { SafeRoot } from './safe-root.js'
import type { TarEntry } from './types.js'
import { OPAQUE_WHITEOUT, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX } from './types.js'
import { applyOpaque, applyWhiteout } from './whiteouts.js'

export interface ExtractOptions {
  /** 'apply': whiteouts delete from `root`; 'snapshot': they become overlayfs whiteouts (a lower dir). */
  mode: 'apply' | 'snapshot'
  /** Create char and block devices instead of refusing them. */
  allowDevices?: boolean
  /** Names the archive in errors (default: the source path). */
  label?: string
  /** Entries for which this returns false are skipped (after their names were checked). */
  filter?: (entry: TarEntry) => boolean
  /**
   * Added to every owner and group: a copy of a layer for a user namespace whose root is this host uid
   * (the owners the instance sees are the layer's own).
   */
  idOffset?: number
}

/** What one extraction shares: the checked root and what this layer wrote so far. */
export interface ExtractState {
  tree: SafeRoot
  label: string
  mode: ExtractOptions['mode']
  /** Paths this layer wrote: whiteouts and opaque markers only hide what layers below wrote. */
  written: Set<string>
  /** Directory metadata, applied once all children are in place. */
  dirs: Map<string, TarEntry>
}

/**
 * Extracts a layer into `root` without ever writing outside it. Each entry is checked before anything is
 * written for it: names that are absolute or contain '..', a parent that is a symlink in the target,
 * hardlinks to anything but a regular file already extracted, devices (unless `allowDevices`) and unknown
 * types are refused with UNSAFE_TAR naming the archive and the entry. Whatever is in the way of an entry
 * is removed first and files are created with O_EXCL|O_NOFOLLOW, so nothing is written through a link.
 * Owners, modes and mtimes are applied; directories get theirs last. Whiteouts follow `opts.mode`.
 */
export async function extractLayer(
  source: string | NodeJS.ReadableStream,
  root: string,
  opts: ExtractOptions,
): Promise<{ entries: number }> {
  const label = opts.label ?? (typeof source === 'string' ? source : 'layer')
  const state: ExtractState = {
    tree: await openSafeRoot(root, label),
    label,
    mode: opts.mode,
    written: new Set(),
    dirs: new Map(),
  }
  let entries = 0
  await readTar(source, label, async (header, content) => {
    const entry = fromHeader(header, label)
    if (entry === undefined || (opts.filter && !opts.filter(entry))) return
    if (opts.idOffset) {
      entry.uid += opts.idOffset
      entry.gid += opts.idOffset
    }
    entries++
    const base = baseOf(entry.path)
    if (base === OPAQUE_WHITEOUT) return applyOpaque(state, header.name, parentOf(entry.path))
    if (base.startsWith(WHITEOUT_META_PREFIX)) return // aufs bookkeeping, meaningless in OCI
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const target = base.slice(WHITEOUT_PREFIX.length)
      if (target === '' || target === '.' || target === '..') {
        throw unsafeTar(label, header.name, 'bad whiteout name')
      }
      return applyWhiteout(state, header.name, joinRel(parentOf(entry.path), target))
    }
    if ((entry.type === 'char' || entry.type === 'block') && !opts.allowDevices) {
      throw unsafeTar(label, header.name, `${entry.type} device entries are not allowed`)
    }
    if (entry.type === 'link') await checkHardlink(state, header.name, entry)
    if (entry.type === 'symlink' && !entry.linkname) {
      throw unsafeTar(label, header.name, 'symlink without a target')
    }
    await createEntry(state, header.name, entry, content)
    state.written.add(entry.path)
  })
  await finishDirectories(state)
  return { entries }
}

/** A hardlink may only point at a regular file reached through real directories inside the root. */
async function checkHardlink(state: ExtractState, name: string, entry: TarEntry): Promise<void> {
  const target = entry.linkname ?? ''
  const why = (reason: string) => unsafeTar(state.label, name, `hardlink target "${target}" ${reason}`)
  if (target === entry.path) throw why('is the link itself')
  if (!(await state.tree.parentsExist(target, name))) throw why('does not exist')
  const st = await state.tree.stat(target)
  if (st === undefined) throw why('does not exist')
  if (!st.isFile()) throw why('is not a regular file')
}

/**
 * Directory owners, modes and mtimes go last and deepest first, so a read-only mode cannot get in the
 * way of children and writing a child cannot move a parent's mtime. A directory that a later entry
 * replaced (or that now sits below a symlink) is skipped: it is no longer the one the entry described.
 */
async function finishDirectories(state: ExtractState): Promise<void> {
  const dirs = sortByPath([...state.dirs.values()], (e) => e.path).reverse()
  for (const e of dirs) {
    if (!(await state.tree.reachable(e.path))) continue
    let fh: FileHandle
    try {
      fh = await open(
        state.tree.abs(e.path),
        constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW,
      )
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'ELOOP')) continue
      throw err
    }
    try {
      await fh.chown(e.uid, e.gid)
      await fh.chmod(e.mode)
      await fh.utimes(e.mtime, e.mtime)
    } finally {
      await fh.close()
    }
  }
}
