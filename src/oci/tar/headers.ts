import type { Header } from 'tar-stream'
import { normaliseEntryPath, unsafeTar } from './paths.js'
import type { EntryType, TarEntry } from './types.js'

/** What `pack.entry` takes: a partial header with a name. */
export type PackHeader = Partial<Header> & { name: string }

const TO_TAR: Record<EntryType, Header['type']> = {
  file: 'file',
  directory: 'directory',
  symlink: 'symlink',
  link: 'link',
  char: 'character-device',
  block: 'block-device',
  fifo: 'fifo',
}

const FROM_TAR: Partial<Record<string, EntryType>> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'directory',
  symlink: 'symlink',
  link: 'link',
  'character-device': 'char',
  'block-device': 'block',
  fifo: 'fifo',
}

// tar-stream replaces a mode of 0 by 0644 (a whiteout's mode is 0), so the file-type bits are added:
// the mode is never 0 then, and the encoder masks them off again (`mode & 0o7777`).
const S_IF: Record<EntryType, number> = {
  file: 0o100000,
  link: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
}

/** Largest id an octal ustar field holds; beyond it the id goes into a pax header. */
const MAX_USTAR_ID = 0o7777777

/**
 * The tar header for an entry with mtime clamped into [0, epoch]. Directories get the conventional
 * trailing '/', owner names stay empty (numeric ids are what count) and a pax header appears only when
 * ustar cannot hold a field: long or non-ASCII names (tar-stream decides) and ids above 2097151.
 */
export function toHeader(entry: TarEntry, epoch: number): PackHeader {
  const isFile = entry.type === 'file'
  const isDevice = entry.type === 'char' || entry.type === 'block'
  const header: PackHeader = {
    name: entry.type === 'directory' ? `${entry.path}/` : entry.path,
    type: TO_TAR[entry.type],
    mode: S_IF[entry.type] | (entry.mode & 0o7777),
    uid: entry.uid,
    gid: entry.gid,
    size: isFile ? entry.size : 0,
    mtime: new Date(clampMtime(entry.mtime, epoch) * 1000),
    linkname: entry.type === 'symlink' || entry.type === 'link' ? (entry.linkname ?? '') : '',
    uname: '',
    gname: '',
    devmajor: isDevice ? (entry.devmajor ?? 0) : 0,
    devminor: isDevice ? (entry.devminor ?? 0) : 0,
  }
  if (entry.uid > MAX_USTAR_ID || entry.gid > MAX_USTAR_ID) {
    header.pax = { uid: String(entry.uid), gid: String(entry.gid) }
  }
  return header
}

/** Source dates after the epoch are clamped to it; negative ones (before 1970) become 0. */
export function clampMtime(mtime: number, epoch: number): number {
  return Math.max(0, Math.min(Math.floor(mtime), epoch))
}

/**
 * Turns a parsed header into an entry, or `undefined` for the root directory ('./'). Names that could
 * leave the root, hardlinks whose target could, and entry types Grail does not know are refused with
 * UNSAFE_TAR naming `label` and the entry. Pax uid/gid/mtime override the ustar fields.
 */
export function fromHeader(header: Header, label: string): TarEntry | undefined {
  const name = header.name
  const type = FROM_TAR[header.type ?? '']
  if (type === undefined) throw unsafeTar(label, name, `unsupported entry type ${header.type ?? 'unknown'}`)
  const norm = normaliseEntryPath(name)
  if ('problem' in norm) throw unsafeTar(label, name, norm.problem)
  if (norm.path === '') {
    if (type === 'directory') return undefined
    throw unsafeTar(label, name, 'names the root but is not a directory')
  }
  const pax = (header.pax ?? {}) as Record<string, string | undefined>
  const entry: TarEntry = {
    path: norm.path,
    type,
    mode: header.mode & 0o7777,
    uid: paxNumber(pax.uid) ?? header.uid,
    gid: paxNumber(pax.gid) ?? header.gid,
    size: type === 'file' ? header.size : 0,
    mtime: paxNumber(pax.mtime) ?? Math.floor(header.mtime.getTime() / 1000),
  }
  if (type === 'symlink') entry.linkname = header.linkname ?? ''
  if (type === 'link') {
    const target = normaliseEntryPath(header.linkname ?? '')
    if ('problem' in target)
      throw unsafeTar(label, name, `hardlink target "${header.linkname}": ${target.problem}`)
    if (target.path === '') throw unsafeTar(label, name, 'hardlink to the root directory')
    entry.linkname = target.path
  }
  if (type === 'char' || type === 'block') {
    entry.devmajor = header.devmajor
    entry.devminor = header.devminor
  }
  return entry
}

function paxNumber(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Math.floor(Number(value))
  return Number.isFinite(n) && n >= 0 ? n : undefined
}
