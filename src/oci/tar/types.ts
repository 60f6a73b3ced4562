/** The kinds of tar entries Grail reads and writes; anything else in an archive is refused. */
export type EntryType = 'file' | 'directory' | 'symlink' | 'link' | 'char' | 'block' | 'fifo'

/** One entry of a layer, as metadata only. */
export interface TarEntry {
  /** Relative POSIX path: no leading './' or '/', no trailing '/', never '' (the root is not an entry). */
  path: string
  type: EntryType
  /** Permission bits plus setuid/setgid/sticky (masked with 0o7777). */
  mode: number
  uid: number
  gid: number
  /** Regular files only, else 0. */
  size: number
  /** Seconds since the Unix epoch. */
  mtime: number
  /** Symlink target (verbatim) or hardlink target (relative path of another entry). */
  linkname?: string
  devmajor?: number
  devminor?: number
}

/** An entry to write: a regular file's content comes from `data` or else from the host file `source`. */
export interface PackEntry extends TarEntry {
  source?: string
  data?: Buffer
}

/** OCI whiteout prefix: `dir/.wh.name` deletes `dir/name` from the layers below. */
export const WHITEOUT_PREFIX = '.wh.'

/** OCI opaque marker: `dir/.wh..wh..opq` hides everything the layers below have in `dir`. */
export const OPAQUE_WHITEOUT = '.wh..wh..opq'

/** Prefix of aufs bookkeeping names (`.wh..wh.plnk` …) that carry no meaning for OCI and are skipped. */
export const WHITEOUT_META_PREFIX = '.wh..wh.'

/** The xattr overlayfs sets (value `y`) on a directory that hides its lower content. */
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque'
