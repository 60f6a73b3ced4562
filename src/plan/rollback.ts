import type { ReleaseView } from './types.js'

/** The release `grail rollback` re-deploys, or why there is none. */
export type RollbackChoice<R extends ReleaseView> =
  | { kind: 'release'; release: R }
  | { kind: 'none'; reason: string }
  | { kind: 'revoked'; release: R; reason: string }

/**
 * The target of a rollback: the release asked for, or by default the newest superseded one whose image
 * is not revoked. A revoked image is never rolled back to: the next apply would replace it at once, and
 * until then it would serve what was pulled out of service.
 */
export function rollbackTarget<R extends ReleaseView>(
  releases: readonly R[],
  revoked: Readonly<Record<string, string>>,
  requested?: number,
): RollbackChoice<R> {
  const newestFirst = [...releases].sort((a, b) => b.number - a.number)
  const active = newestFirst.find((r) => r.status === 'active')
  if (requested !== undefined) {
    const r = newestFirst.find((x) => x.number === requested)
    if (!r) return { kind: 'none', reason: `no #${requested} release to roll back to` }
    const why = revoked[r.imageDigest]
    if (why !== undefined)
      return {
        kind: 'revoked',
        release: r,
        reason: `release #${r.number} runs image ${r.imageName}@${r.imageVersion}, which is revoked (${why})`,
      }
    return { kind: 'release', release: r }
  }
  const earlier = newestFirst.filter((r) => r.status === 'superseded' && r.number !== active?.number)
  const target = earlier.find((r) => revoked[r.imageDigest] === undefined)
  if (target) return { kind: 'release', release: target }
  if (earlier.length > 0)
    return {
      kind: 'none',
      reason: `no earlier release to roll back to whose image is not revoked (${earlier.map((r) => `#${r.number} ${r.imageName}@${r.imageVersion}`).join(', ')} are revoked)`,
    }
  return { kind: 'none', reason: 'no earlier release to roll back to' }
}
