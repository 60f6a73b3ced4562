import { canonicalJson } from '../oci/canonical-json.js'
import { sha256Hex } from '../oci/digest.js'

/** Bumped when the layer format or key derivation changes, so old cache entries are never reused wrongly. */
export const BUILDER_VERSION = 1

/**
 * A cache key: hash of the parent key and whatever defines this step (its definition and the content
 * hashes of its inputs), never of host paths or times, so the same inputs give the same key anywhere.
 */
export function deriveKey(parent: string, part: unknown): string {
  return sha256Hex(canonicalJson({ v: BUILDER_VERSION, parent, part }))
}
