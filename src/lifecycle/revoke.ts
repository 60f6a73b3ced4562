import { GrailError } from '../errors.js'
import type { Db, ImageRecord } from '../state/index.js'
import { appendEvent, childrenOf, getImage, listImages, setImageStatus } from '../state/index.js'

/** `NAME@VERSION` (or `NAME:vVERSION`), checked: what revoke, unrevoke and pin take. */
export function parseImageRef(ref: string): { name: string; version: number } {
  const m = /^([a-z0-9][a-z0-9._-]{0,62})(?:@|:v)(\d+)$/.exec(ref)
  if (!m) {
    throw new GrailError('BAD_IMAGE_REF', `"${ref}" is not an image version`, {
      hint: 'write NAME@VERSION, for example web@3 (see `grail images`)',
    })
  }
  return { name: m[1] as string, version: Number(m[2]) }
}

/** The catalog entry of `ref`, or a user error listing the versions that exist. */
export function findImage(db: Db, ref: { name: string; version: number }): ImageRecord {
  const rec = getImage(db, ref.name, ref.version)
  if (rec) return rec
  const versions = listImages(db, ref.name).map((i) => `v${i.version}`)
  throw new GrailError('UNKNOWN_IMAGE', `no image ${ref.name}@${ref.version} in the catalog`, {
    hint: versions.length ? `versions of ${ref.name}: ${versions.join(', ')}` : 'see `grail images`',
  })
}

/** The image and, with `cascade`, every image built on it, directly or not (children before grandchildren). */
export function withDescendants(db: Db, root: ImageRecord, cascade: boolean): ImageRecord[] {
  const out = [root]
  if (!cascade) return out
  const seen = new Set([root.digest])
  for (let i = 0; i < out.length; i++) {
    for (const child of childrenOf(db, (out[i] as ImageRecord).digest)) {
      if (seen.has(child.digest)) continue
      seen.add(child.digest)
      out.push(child)
    }
  }
  return out
}

export interface RevokeResult {
  revoked: Array<{ name: string; version: number; digest: string }>
  /** images built on a revoked one that stay active (no --cascade) */
  children: Array<{ name: string; version: number }>
}

/**
 * Pulls an image version (and with `cascade` its descendants) out of service: the next plan replaces every
 * instance that runs one, builds refuse it as a base, and `grail images` shows the status and reason.
 */
export function revokeImages(db: Db, ref: string, reason: string, cascade: boolean): RevokeResult {
  if (reason.trim() === '') {
    throw new GrailError('REVOKE_NO_REASON', 'revoking an image needs a reason', {
      hint: 'say why with --reason "…": it is shown by `grail images` and in the plan',
    })
  }
  const root = findImage(db, parseImageRef(ref))
  const targets = withDescendants(db, root, cascade)
  const tx = db.transaction(() => {
    for (const t of targets) {
      const why = t === root ? reason : `${reason} (built on ${root.name}@${root.version})`
      setImageStatus(db, t.name, t.version, 'revoked', why)
      appendEvent(db, 'image.revoked', `${t.name}@${t.version}`, { digest: t.digest, reason: why, cascade })
    }
  })
  tx.immediate()
  const children = cascade ? [] : childrenOf(db, root.digest).filter((c) => c.status !== 'revoked')
  return {
    revoked: targets.map((t) => ({ name: t.name, version: t.version, digest: t.digest })),
    children: children.map((c) => ({ name: c.name, version: c.version })),
  }
}

/** Undoes a revocation (and with `cascade`, that of its descendants). */
export function unrevokeImages(db: Db, ref: string, cascade: boolean): RevokeResult {
  const root = findImage(db, parseImageRef(ref))
  const targets = withDescendants(db, root, cascade).filter((t) => t.status === 'revoked')
  const tx = db.transaction(() => {
    for (const t of targets) {
      setImageStatus(db, t.name, t.version, 'active', null)
      appendEvent(db, 'image.unrevoked', `${t.name}@${t.version}`, { digest: t.digest })
    }
  })
  tx.immediate()
  return {
    revoked: targets.map((t) => ({ name: t.name, version: t.version, digest: t.digest })),
    children: [],
  }
}
