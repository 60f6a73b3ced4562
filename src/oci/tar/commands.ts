import type { Command } from '../../util/exec.js'
import { OVERLAY_OPAQUE_XATTR } from './types.js'

// Node has no mknod, mkfifo or xattr API, so these few operations spawn coreutils and `attr` (Debian
// package `attr`). Paths passed here are always absolute, so none can be mistaken for an option.

/** `mknod` for a character or block device (`c 0 0` is an overlayfs whiteout). */
export function mknodCommand(
  path: string,
  kind: 'c' | 'b',
  major: number,
  minor: number,
  mode: number,
): Command {
  return { file: 'mknod', args: ['-m', modeArg(mode), path, kind, String(major), String(minor)] }
}

/** `mkfifo` for a named pipe. */
export function mkfifoCommand(path: string, mode: number): Command {
  return { file: 'mkfifo', args: ['-m', modeArg(mode), path] }
}

/** Marks a directory opaque for overlayfs; `-h` so a symlink is never followed. */
export function setOpaqueCommand(dir: string): Command {
  return { file: 'setfattr', args: ['-h', '-n', OVERLAY_OPAQUE_XATTR, '-v', 'y', dir] }
}

/**
 * Lists every opaque directory below `root` in one spawn. `-h -P`: symlinks are neither followed nor
 * reported, so a link to an opaque directory elsewhere (or a dangling link) cannot leak into the result.
 */
export function findOpaqueCommand(root: string): Command {
  return {
    file: 'getfattr',
    args: ['-R', '-h', '-P', '--absolute-names', '-d', '-m', '^trusted\\.overlay\\.opaque$', root],
  }
}

/**
 * Parses `getfattr -d` output into the absolute paths whose opaque xattr is `y`. getfattr escapes
 * unprintable bytes, whitespace and backslashes in names as `\ooo`; the output is decoded byte-wise so
 * names in UTF-8 come back whole whatever the locale. (Value `x` marks a merge dir holding
 * xwhiteouts, not an opaque one.)
 */
export function parseOpaqueDirs(stdout: Buffer): string[] {
  const found: string[] = []
  let current: string | undefined
  for (const line of stdout.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      current = unescapeName(line.slice('# file: '.length))
    } else if (current !== undefined && line === `${OVERLAY_OPAQUE_XATTR}="y"`) {
      found.push(current)
    }
  }
  return found
}

function unescapeName(escaped: string): string {
  const latin1 = escaped.replace(/\\([0-7]{3})/g, (_, oct: string) =>
    String.fromCharCode(Number.parseInt(oct, 8)),
  )
  return Buffer.from(latin1, 'latin1').toString('utf8')
}

function modeArg(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0')
}
