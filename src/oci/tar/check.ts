import { GrailError } from '../../errors.js'
import { fromHeader } from './headers.js'
import { baseOf, isSameOrBelow, joinRel, parentOf } from './paths.js'
import { readTar } from './read.js'
import type { EntryType } from './types.js'
import { OPAQUE_WHITEOUT, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX } from './types.js'

/** The tree a stack of layers builds so far: relative path → type; a layer's own paths as well. */
export interface StackState {
  tree: Map<string, EntryType>
}

export function newStackState(): StackState {
  return { tree: new Map() }
}

function refuse(label: string, name: string, reason: string, hint: string): GrailError {
  return new GrailError('UNSAFE_BASE', `${label}: refusing entry "${name}": ${reason}`, { hint })
}

const DEVICE_HINT =
  'a base image must not carry device nodes or fifos (the runtime provides /dev); remove them from the archive, e.g. `tar --delete --wildcards -f base.tar "./dev/*"`'
const LINK_HINT =
  'the archive writes through a symlink, so unpacking it would change a file the link points at; rebuild the base without it'

/** The first ancestor of `path` that is a symlink in the tree, if any. */
function symlinkAbove(tree: Map<string, EntryType>, path: string): string | undefined {
  let dir = parentOf(path)
  const chain: string[] = []
  while (dir !== '') {
    chain.unshift(dir)
    dir = parentOf(dir)
  }
  return chain.find((d) => tree.get(d) === 'symlink')
}

function removeBelow(tree: Map<string, EntryType>, dir: string, andSelf: boolean): void {
  for (const p of [...tree.keys()]) if (isSameOrBelow(p, dir) && (andSelf || p !== dir)) tree.delete(p)
}

/**
 * Reads one archive of a foreign base (a rootfs tarball, or one layer of an imported OCI layout, in
 * order) without writing anything, and refuses with UNSAFE_TAR / UNSAFE_BASE, naming `label` and the
 * entry as written: names that leave the root, entries (whiteouts included) below a path that is a
 * symlink in this or a lower layer, hardlinks to anything but a regular file this archive wrote before,
 * and device nodes and fifos. This is the check at import, so a base is refused at build and never later.
 */
export async function checkForeignArchive(
  source: string | NodeJS.ReadableStream,
  label: string,
  state: StackState,
): Promise<{ entries: number }> {
  const tree = state.tree
  const written = new Set<string>()
  let entries = 0
  await readTar(source, label, async (header) => {
    const entry = fromHeader(header, label) // names that leave the root are refused here
    if (entry === undefined) return
    entries++
    const through = symlinkAbove(tree, entry.path)
    if (through !== undefined)
      throw refuse(label, header.name, `it is below "${through}", a symlink`, LINK_HINT)
    const base = baseOf(entry.path)
    if (base === OPAQUE_WHITEOUT) {
      const dir = parentOf(entry.path)
      for (const p of [...tree.keys()])
        if (dir === '' || (isSameOrBelow(p, dir) && p !== dir)) if (!written.has(p)) tree.delete(p)
      return
    }
    if (base.startsWith(WHITEOUT_META_PREFIX)) return
    if (base.startsWith(WHITEOUT_PREFIX)) {
      removeBelow(tree, joinRel(parentOf(entry.path), base.slice(WHITEOUT_PREFIX.length)), true)
      return
    }
    if (entry.type === 'char' || entry.type === 'block' || entry.type === 'fifo') {
      const what = entry.type === 'fifo' ? 'a fifo' : `a ${entry.type} device`
      throw refuse(label, header.name, `it is ${what}`, DEVICE_HINT)
    }
    if (entry.type === 'link') {
      const target = entry.linkname ?? ''
      const above = symlinkAbove(tree, target)
      if (above !== undefined)
        throw refuse(
          label,
          header.name,
          `its hardlink target "${target}" is below "${above}", a symlink`,
          LINK_HINT,
        )
      if (!written.has(target) || (tree.get(target) !== 'file' && tree.get(target) !== 'link'))
        throw refuse(
          label,
          header.name,
          `its hardlink target "${target}" is not a regular file earlier in the same archive`,
          'a hardlink in a layer must point at a file of that layer; rebuild the base without it',
        )
    }
    // a non-directory replaces what was there, children included
    if (entry.type !== 'directory') removeBelow(tree, entry.path, false)
    tree.set(entry.path, entry.type)
    written.add(entry.path)
  })
  return { entries }
}
