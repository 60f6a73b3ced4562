import type { Stats } from 'node:fs'
import { lstat, mkdir, realpath, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { GrailError, isErrno } from '../../errors.js'
import { isSameOrBelow, parentOf, unsafeTar } from './paths.js'

/**
 * The extraction root, reached only through paths whose every component was checked with lstat: a
 * symlink inside the root is never followed on the way to a write. Directories already checked are
 * remembered (a 10-level-deep tree would otherwise cost ten lstats per entry); the set is closed under
 * ancestors, and whatever replaces or removes a directory drops it and everything below from the set.
 */
export interface SafeRoot {
  readonly root: string
  abs(rel: string): string
  /** lstat of `rel`, `undefined` when nothing is there. */
  stat(rel: string): Promise<Stats | undefined>
  /** Creates missing ancestors of `rel` (mode 0755); refuses a symlink or non-directory among them. */
  ensureParents(rel: string, entryName: string): Promise<void>
  /** True when every ancestor of `rel` is a real directory; false if one is missing; refuses symlinks. */
  parentsExist(rel: string, entryName: string): Promise<boolean>
  /** True when every ancestor of `rel` is a real directory, false otherwise (never throws for symlinks). */
  reachable(rel: string): Promise<boolean>
  /** Records that `rel` is now a real directory. */
  markDir(rel: string): void
  /** Removes whatever is at `rel` (recursively, never following symlinks). */
  remove(rel: string): Promise<void>
}

/** Opens `root` (which must exist) for safe extraction; `label` names the archive in errors. */
export async function openSafeRoot(root: string, label: string): Promise<SafeRoot> {
  const real = await realpath(root)
  const verified = new Set<string>([''])
  const abs = (rel: string) => (rel === '' ? real : join(real, rel))

  const stat = async (rel: string): Promise<Stats | undefined> => {
    try {
      return await lstat(abs(rel))
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined
      throw err
    }
  }

  const forget = (rel: string) => {
    if (!verified.has(rel)) return // closed under ancestors: nothing below it is cached either
    for (const dir of verified) if (isSameOrBelow(dir, rel)) verified.delete(dir)
  }

  // walks the ancestors of `rel` top-down; `how` decides what a missing one or a symlink means
  const walkParents = async (
    rel: string,
    entryName: string,
    how: 'create' | 'check' | 'probe',
  ): Promise<boolean> => {
    const create = how === 'create'
    const parent = parentOf(rel)
    if (verified.has(parent)) return true
    const parts = parent.split('/')
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/')
      if (verified.has(dir)) continue
      const st = await stat(dir)
      if (st === undefined) {
        if (!create) return false
        await mkdir(abs(dir), 0o755)
      } else if (st.isSymbolicLink()) {
        if (how === 'probe') return false
        throw unsafeTar(label, entryName, `its parent "${dir}" is a symlink in the target`)
      } else if (!st.isDirectory()) {
        if (!create) return false
        throw new GrailError(
          'BAD_TAR',
          `${label}: entry "${entryName}" is below "${dir}", which is not a directory`,
          {
            hint: 'the archive is inconsistent with the layers below it',
          },
        )
      }
      verified.add(dir)
    }
    return true
  }

  return {
    root: real,
    abs,
    stat,
    ensureParents: async (rel, entryName) => {
      await walkParents(rel, entryName, 'create')
    },
    parentsExist: (rel, entryName) => walkParents(rel, entryName, 'check'),
    reachable: (rel) => walkParents(rel, rel, 'probe'),
    markDir: (rel) => {
      verified.add(rel)
    },
    remove: async (rel) => {
      forget(rel)
      const st = await stat(rel)
      if (st === undefined) return
      if (st.isDirectory()) await rm(abs(rel), { recursive: true, force: true })
      else await unlink(abs(rel))
    },
  }
}
