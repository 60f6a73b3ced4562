import type { Blocked, DesiredService, ReleaseView } from './types.js'

/**
 * The releases promoted to an environment (by `grail promote`) that could run there again, newest first:
 * a failed or rolled-back promotion never became what the environment runs.
 */
export function promotedReleases<R extends ReleaseView>(releases: readonly R[]): R[] {
  return releases
    .filter((r) => r.promotedFrom !== null && r.status !== 'failed' && r.status !== 'rolled-back')
    .sort((a, b) => b.number - a.number)
}

/** What a promoted-to environment runs for one service, or why nothing may run there. */
export type PromotedChoice = { kind: 'run'; release: ReleaseView } | { kind: 'blocked'; blocked: Blocked }

function shortDigest(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12)
}

/** `staging` of `staging#4`: the environment a release was promoted from. */
function sourceEnv(promotedFrom: string | null): string {
  return promotedFrom?.replace(/#\d+$/, '') || 'ENV'
}

/**
 * The release a promoted-to environment runs: its newest promotion whose image is not revoked. Only what
 * was promoted there is a candidate (never the newest build, never a release made from the spec), so a
 * revoked promotion falls back to an earlier promotion; when every promotion is revoked the environment
 * is blocked, naming the environment, the service and the revoked image, until a good release is promoted
 * or the image unrevoked. Null when nothing was ever promoted there.
 */
export function choosePromoted(opts: {
  environment: string
  want: DesiredService
  releases: readonly ReleaseView[]
  active: ReleaseView | undefined
  revoked: Readonly<Record<string, string>>
}): PromotedChoice | null {
  const { environment, want, active, revoked } = opts
  const promoted = promotedReleases(opts.releases)
  const newest = promoted[0]
  if (!newest) return null
  const good = promoted.find((r) => revoked[r.imageDigest] === undefined)
  if (good) return { kind: 'run', release: good }
  // name what runs when that is the revoked image, else what was promoted last
  const shown = active && revoked[active.imageDigest] !== undefined ? active : newest
  const from = sourceEnv(newest.promotedFrom)
  const ref = `${shown.imageName}@${shown.imageVersion}`
  const all = [...new Set(promoted.map((r) => `${r.imageName}@${r.imageVersion}`))]
  const others =
    all.length > 1 || all[0] !== ref ? `: every promotion runs a revoked image (${all.join(', ')})` : ''
  return {
    kind: 'blocked',
    blocked: {
      service: want.service,
      image: { name: shown.imageName, version: shown.imageVersion, digest: shown.imageDigest },
      reason: `${environment}: service ${want.service} ${shown === active ? 'runs' : 'was promoted'} image ${ref} (${shortDigest(shown.imageDigest)}), which is revoked (${revoked[shown.imageDigest]}), and no release promoted to ${environment} can replace it${others}`,
      hint: `${environment} only runs what is promoted to it: deploy a fixed build to ${from} and promote it (\`grail up ${from}\`, then \`grail promote ${want.service} --from ${from} --to ${environment}\`), or unrevoke the image (\`grail unrevoke ${ref}\`)`,
    },
  }
}
