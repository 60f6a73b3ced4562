import { readdir } from 'node:fs/promises'
import { runCommand } from '../../util/exec.js'
import { mknodCommand, setOpaqueCommand } from './commands.js'
import type { ExtractState } from './extract.js'
import { joinRel, unsafeTar } from './paths.js'

// OCI image spec, "Whiteouts": a whiteout only hides what the layers below provide; files of the same
// layer stay. Hence the `written` checks: a layer that has both x and .wh.x keeps x.

/**
 * `.wh.name`: in apply mode removes `target` (recursively, never following links) unless this layer
 * wrote it; in snapshot mode leaves an overlayfs whiteout (char device 0/0, via `mknod`) in its place.
 */
export async function applyWhiteout(state: ExtractState, name: string, target: string): Promise<void> {
  const { tree } = state
  if (state.written.has(target)) return
  if (state.mode === 'apply') {
    if (!(await tree.parentsExist(target, name))) return // nothing below to hide
    await tree.remove(target)
    return
  }
  await tree.ensureParents(target, name)
  await tree.remove(target)
  await runCommand(mknodCommand(tree.abs(target), 'c', 0, 0, 0))
}

/**
 * `.wh..wh..opq` in `dir`: in apply mode removes every child of `dir` this layer did not write (and
 * descends into the directories it did write, whose lower content is hidden too); in snapshot mode marks
 * `dir` opaque with the `trusted.overlay.opaque=y` xattr (via `setfattr`, Node has no xattr API).
 */
export async function applyOpaque(state: ExtractState, name: string, dir: string): Promise<void> {
  const { tree } = state
  if (state.mode === 'apply') {
    if (!(await tree.parentsExist(dir, name))) return
  } else {
    await tree.ensureParents(dir, name)
  }
  const st = await tree.stat(dir)
  if (st?.isSymbolicLink())
    throw unsafeTar(state.label, name, `its directory "${dir}" is a symlink in the target`)
  if (state.mode === 'snapshot') {
    if (st === undefined) {
      await tree.ensureParents(joinRel(dir, 'x'), name)
      tree.markDir(dir)
    } else if (!st.isDirectory()) {
      throw unsafeTar(state.label, name, `its directory "${dir}" is not a directory in the target`)
    }
    await runCommand(setOpaqueCommand(tree.abs(dir)))
    return
  }
  if (st?.isDirectory()) await prune(state, dir)
}

async function prune(state: ExtractState, dir: string): Promise<void> {
  for (const child of await readdir(state.tree.abs(dir))) {
    const rel = joinRel(dir, child)
    if (!state.written.has(rel)) await state.tree.remove(rel)
    else if ((await state.tree.stat(rel))?.isDirectory()) await prune(state, rel)
  }
}
