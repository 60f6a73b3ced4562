import type { Db } from '../state/index.js'
import { pinImage, unpinImage } from '../state/index.js'
import { findImage, parseImageRef } from './revoke.js'

/** What `grail pin --json` and `grail unpin --json` print, and what the API answers. */
export interface PinResult {
  name: string
  version: number
  digest: string
  pinned: boolean
}

/**
 * Pins an image version (gc keeps it, whatever the retention rules say) or unpins it. `ref` is
 * `NAME@VERSION`, checked (BAD_IMAGE_REF, UNKNOWN_IMAGE).
 */
export function setPinned(db: Db, ref: string, opts: { pinned: boolean; reason: string }): PinResult {
  const rec = findImage(db, parseImageRef(ref))
  if (opts.pinned) pinImage(db, rec, opts.reason)
  else unpinImage(db, rec.digest)
  return { name: rec.name, version: rec.version, digest: rec.digest, pinned: opts.pinned }
}
