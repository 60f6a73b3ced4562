import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { planActions } from './plan.js'
import { rollbackTarget } from './rollback.js'
import type { DesiredService, InstanceView, ReleaseView } from './types.js'

const D1 = `sha256:${'1'.repeat(64)}` as const
const D2 = `sha256:${'2'.repeat(64)}` as const
const D3 = `sha256:${'3'.repeat(64)}` as const
const C1 = `sha256:${'a'.repeat(64)}` as const

// prod receives promotions of web: the spec's own build (v3) must never be what it runs
const promotedWant = (over: Partial<DesiredService> = {}): DesiredService => ({
  service: 'web',
  replicas: 2,
  image: null,
  configDigest: C1,
  promoted: true,
  ...over,
})
const release = (number: number, version: number, over: Partial<ReleaseView> = {}): ReleaseView => ({
  number,
  imageDigest: [D1, D2, D3][version - 1] as typeof D1,
  configDigest: C1,
  imageName: 'web',
  imageVersion: version,
  status: 'superseded',
  promotedFrom: `staging#${number - 1}`,
  ...over,
})
const inst = (id: string, rel: number, over: Partial<InstanceView> = {}): InstanceView => ({
  id,
  service: 'web',
  release: rel,
  known: true,
  state: 'running',
  health: 'healthy',
  ...over,
})
const prodPlan = (releases: ReleaseView[], revoked: Record<string, string>, instances?: InstanceView[]) =>
  planActions({
    environment: 'prod',
    desired: [promotedWant()],
    releases: { web: releases },
    instances: instances ?? [inst('a', 4), inst('b', 4)],
    revoked,
  })

describe('plan: revoked images in a promoted-to environment', () => {
  test('the newest promotion, not revoked, is what runs: nothing to do', () => {
    const p = prodPlan([release(2, 1), release(4, 2, { status: 'active' })], {})
    assert.deepEqual(p.actions, [])
    assert.deepEqual(p.blocked, [])
  })

  test('a revoked promotion is replaced by the newest earlier promotion that is not revoked', () => {
    const p = prodPlan([release(2, 1), release(4, 2, { status: 'active' })], { [D2]: 'CVE-2026-1' })
    assert.deepEqual(p.blocked, [])
    assert.equal(p.actions.length, 1)
    const a = p.actions[0]
    assert.equal(a?.kind, 'deploy')
    if (a?.kind !== 'deploy') return
    assert.deepEqual(a.image, { name: 'web', version: 1, digest: D1 })
    assert.equal(a.from, 4)
    assert.equal(a.configDigest, C1)
    assert.match(
      a.reason,
      /^new release: the running image 222222222222 is revoked \(CVE-2026-1\); image web v1 \(111111111111\) of release #2 \(promoted from staging#1\) replaces it$/,
    )
  })

  test('a spec build or a release made from the spec is never a candidate, however new', () => {
    const p = planActions({
      environment: 'prod',
      desired: [promotedWant({ image: { name: 'web', version: 3, digest: D3 } })],
      releases: {
        web: [
          release(2, 1, { status: 'active' }),
          // made in prod from the spec before anything was promoted there, or by a config change
          release(5, 3, { status: 'superseded', promotedFrom: null }),
        ],
      },
      instances: [inst('a', 2)],
      revoked: { [D1]: 'CVE-2026-1' },
    })
    assert.deepEqual(p.actions, [], 'nothing is deployed: web v3 was never promoted to prod')
    assert.equal(p.blocked.length, 1)
  })

  test('when every promotion is revoked the service is blocked, naming environment, service and image', () => {
    const p = prodPlan(
      [release(2, 1), release(4, 2, { status: 'active' })],
      { [D1]: 'old CVE', [D2]: 'CVE-2026-1' },
      // a crashed instance is not replaced by another one of a revoked image
      [inst('a', 4), inst('b', 4, { state: 'stopped' })],
    )
    assert.deepEqual(p.actions, [])
    assert.equal(p.blocked.length, 1)
    const b = p.blocked[0]
    assert.equal(b?.service, 'web')
    assert.deepEqual(b?.image, { name: 'web', version: 2, digest: D2 })
    assert.match(
      b?.reason ?? '',
      /^prod: service web runs image web@2 \(222222222222\), which is revoked \(CVE-2026-1\)/,
    )
    assert.match(b?.reason ?? '', /no release promoted to prod can replace it/)
    assert.match(b?.reason ?? '', /can replace it: every promotion runs a revoked image \(web@2, web@1\)$/)
    assert.match(b?.hint ?? '', /grail promote web --from staging --to prod/)
    assert.match(b?.hint ?? '', /grail unrevoke web@2/)
  })

  test('failed and rolled-back promotions are not candidates', () => {
    const p = prodPlan(
      [
        release(2, 1, { status: 'rolled-back' }),
        release(3, 3, { status: 'failed' }),
        release(4, 2, { status: 'active' }),
      ],
      { [D2]: 'CVE-2026-1' },
    )
    assert.deepEqual(p.actions, [])
    assert.equal(p.blocked.length, 1)
  })

  test('a --cascade revocation (an image built on a revoked base) is replaced the same way', () => {
    // revokeImages gives every descendant its own revoked entry: here web v2 was built on a revoked base
    const p = prodPlan([release(2, 1), release(4, 2, { status: 'active' })], {
      [D2]: 'CVE-2026-1 (built on base@1)',
    })
    const a = p.actions[0]
    assert.equal(a?.kind, 'deploy')
    if (a?.kind === 'deploy') assert.equal(a.image.digest, D1)
  })

  test('once unrevoked, the newest promotion runs again', () => {
    const fallback = release(5, 1, { status: 'active', promotedFrom: null })
    const p = prodPlan([release(2, 1), release(4, 2), fallback], {}, [inst('a', 5), inst('b', 5)])
    const a = p.actions[0]
    assert.equal(a?.kind, 'deploy')
    if (a?.kind === 'deploy') {
      assert.equal(a.image.digest, D2)
      assert.match(
        a.reason,
        /image web v2 \(222222222222\) of release #4 \(promoted from staging#3\) replaces/,
      )
    }
  })

  test('an earlier promotion that already runs stays when a newer one is revoked', () => {
    const p = prodPlan(
      [release(2, 1, { status: 'active' }), release(4, 2, { status: 'superseded' })],
      {
        [D2]: 'CVE-2026-1',
      },
      [inst('a', 2), inst('b', 2)],
    )
    assert.deepEqual(p.actions, [], 'the earlier promotion already runs')
  })

  test('an environment without promotions replaces a revoked image with the spec build', () => {
    const p = planActions({
      environment: 'staging',
      desired: [
        { service: 'web', replicas: 1, image: { name: 'web', version: 1, digest: D1 }, configDigest: C1 },
      ],
      releases: { web: [release(3, 2, { status: 'active', promotedFrom: null })] },
      instances: [inst('a', 3)],
      revoked: { [D2]: 'CVE-2026-1' },
    })
    assert.equal(p.actions[0]?.kind, 'deploy')
    assert.match(
      p.actions[0]?.reason ?? '',
      /the running image 222222222222 is revoked \(CVE-2026-1\); image web v1/,
    )
  })
})

describe('rollbackTarget', () => {
  const releases = [
    release(1, 1, { promotedFrom: null }),
    release(2, 2, { promotedFrom: null }),
    release(3, 3, { status: 'active', promotedFrom: null }),
  ]

  test('by default the newest superseded release whose image is not revoked', () => {
    const c = rollbackTarget(releases, { [D2]: 'CVE-2026-1' })
    assert.equal(c.kind, 'release')
    if (c.kind === 'release') assert.equal(c.release.number, 1)
    const plain = rollbackTarget(releases, {})
    if (plain.kind === 'release') assert.equal(plain.release.number, 2)
  })

  test('a revoked release asked for by number is refused, naming the image', () => {
    const c = rollbackTarget(releases, { [D2]: 'CVE-2026-1' }, 2)
    assert.equal(c.kind, 'revoked')
    if (c.kind === 'revoked')
      assert.equal(c.reason, 'release #2 runs image web@2, which is revoked (CVE-2026-1)')
  })

  test('no earlier release that is not revoked: none, saying why', () => {
    const c = rollbackTarget(releases, { [D1]: 'x', [D2]: 'y' })
    assert.equal(c.kind, 'none')
    if (c.kind === 'none') assert.match(c.reason, /#2 web@2, #1 web@1 are revoked/)
    assert.equal(rollbackTarget(releases, {}, 9).kind, 'none')
  })
})
