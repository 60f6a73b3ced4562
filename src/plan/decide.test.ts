import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { GrailError } from '../errors.js'
import type { RecycleSpec } from '../spec/types.js'
import { type PlanInput, plan } from './plan.js'
import type { ImageView, InstanceView, ReleaseView, ServiceFacts } from './types.js'

/*
 * The planner from gathered facts alone: no provider, no database, no clock but the `now` it is given.
 */

const H = 3_600_000
const D = 24 * H
const NOW = Date.parse('2026-11-27T03:30:00Z')
const ago = (ms: number) => new Date(NOW - ms).toISOString()
const digest = (c: string) => `sha256:${c.repeat(64)}` as const
const D1 = digest('1')
const D2 = digest('2')
const D3 = digest('3')
const C1 = digest('a')

const image = (name: string, version: number, d: ImageView['digest'], over: Partial<ImageView> = {}) => ({
  name,
  version,
  digest: d,
  status: 'active' as const,
  ...over,
})
const recycle: RecycleSpec = { maxAge: 7 * D, jitter: 0, order: 'oldest' }
const service = (over: Partial<ServiceFacts> = {}): ServiceFacts => ({
  service: 'web',
  image: 'hello',
  replicas: 4,
  configDigest: C1,
  recycle,
  current: { built: true, image: image('hello', 1, D1) },
  versions: [image('hello', 1, D1)],
  ...over,
})
const release = (number: number, over: Partial<ReleaseView> = {}): ReleaseView => ({
  number,
  imageDigest: D1,
  configDigest: C1,
  imageName: 'hello',
  imageVersion: 1,
  status: 'active',
  promotedFrom: null,
  ...over,
})
const inst = (id: string, over: Partial<InstanceView> = {}): InstanceView => ({
  id,
  service: 'web',
  release: 1,
  known: true,
  state: 'running',
  health: 'healthy',
  createdAt: ago(2 * D),
  ...over,
})

/**
 * web runs release #1 of hello v1 on four instances: one older than recycle.maxAge, one with a file
 * changed by hand, one with a hotfix whose TTL ended an hour before NOW, one untouched. api runs hello
 * v2, which is revoked; the catalog's newest active version v3 takes over.
 */
const input = (now: number = NOW): PlanInput => ({
  environment: 'prod',
  now,
  services: [
    service(),
    service({
      service: 'api',
      replicas: 1,
      current: { built: true, image: image('hello', 2, D2, { status: 'revoked' }) },
      versions: [image('hello', 1, D1), image('hello', 2, D2, { status: 'revoked' }), image('hello', 3, D3)],
    }),
  ],
  releases: {
    web: [release(1)],
    api: [release(1, { imageDigest: D2, imageVersion: 2 })],
  },
  instances: [
    inst('old', { createdAt: ago(8 * D) }),
    inst('edited'),
    inst('hotfixed'),
    inst('fine'),
    inst('api-1', { service: 'api' }),
  ],
  drift: {
    old: { findings: 0, summary: '' },
    edited: { findings: 1, summary: '1 file (C /etc/app.conf)' },
    hotfixed: { findings: 1, summary: '' },
    fine: { findings: 0, summary: '' },
  },
  hotfixes: [{ id: 7, instance: 'hotfixed', expiresAt: ago(H) }],
  revoked: { [D2]: 'CVE-2026-1' },
})

const brief = (p: ReturnType<typeof plan>) =>
  p.actions.map((a) => [a.kind, a.service, 'instance' in a ? a.instance : null, a.reason])

describe('plan from facts at a fixed now', () => {
  test('recycles, replaces drift and an expired hotfix, and deploys past a revoked image', () => {
    const p = plan(input())
    assert.deepEqual(brief(p), [
      ['replace', 'web', 'edited', 'drift: 1 file (C /etc/app.conf)'],
      ['replace', 'web', 'hotfixed', 'drift: hotfix #7 expired'],
      ['replace', 'web', 'old', 'age 8d > maxAge 7d'],
      [
        'deploy',
        'api',
        null,
        'new release: the running image 222222222222 is revoked (CVE-2026-1); image hello v3 (333333333333) replaces it',
      ],
    ])
    const causes = p.actions.flatMap((a) => (a.kind === 'replace' ? [a.cause] : []))
    assert.deepEqual(causes, ['drift', 'drift', 'recycle'])
    const deploy = p.actions.find((a) => a.kind === 'deploy')
    assert.deepEqual(deploy?.kind === 'deploy' && deploy.image, { name: 'hello', version: 3, digest: D3 })
  })

  test('drift.policy report or ignore keeps a drifted instance and lists it; an expired hotfix is replaced all the same', () => {
    for (const policy of ['report', 'ignore'] as const) {
      const facts = input()
      facts.services[0] = service({ driftPolicy: policy })
      // the hotfixed instance also has a file changed by hand, not covered by its hotfix
      facts.drift = { ...facts.drift, hotfixed: { findings: 2, summary: '1 file (A /tmp/x)' } }
      const p = plan(facts)
      assert.deepEqual(brief(p).slice(0, 2), [
        ['replace', 'web', 'hotfixed', 'drift: hotfix #7 expired'],
        ['replace', 'web', 'old', 'age 8d > maxAge 7d'],
      ])
      assert.deepEqual(p.driftKept, [
        { service: 'web', instance: 'edited', policy, drift: '1 file (C /etc/app.conf)' },
        { service: 'web', instance: 'hotfixed', policy, drift: '1 file (A /tmp/x)' },
      ])
    }
    assert.equal(plan(input()).driftKept, undefined)
  })

  test('the same facts and now give the same plan', () => {
    assert.deepEqual(plan(input()), plan(input()))
    // the input is not changed by planning
    const facts = input()
    const copy = structuredClone(facts)
    plan(facts)
    assert.deepEqual(facts, copy)
  })

  test('before the hotfix TTL ends its instance stays; before maxAge nothing is recycled', () => {
    const early = plan(input(NOW - 2 * H - 1 * D))
    const replaced = early.actions.flatMap((a) => (a.kind === 'replace' ? [a.instance] : []))
    assert.deepEqual(replaced, ['edited'])
    // the instant the TTL ends it is due
    const atTtl = plan(input(NOW - H))
    assert.ok(atTtl.actions.some((a) => a.kind === 'replace' && a.instance === 'hotfixed'))
  })

  test('most-drifted recycling goes by the findings the scan excused, then by age', () => {
    const facts = input()
    facts.services[0] = service({ recycle: { ...recycle, maxAge: 1 * D, order: 'most-drifted' } })
    // hotfixed's live hotfix excuses two findings; fine's hotfix ran out: it is drift, not recycling
    facts.drift = { ...facts.drift, hotfixed: { findings: 2, summary: '' } }
    facts.hotfixes = [
      { id: 7, instance: 'hotfixed', expiresAt: new Date(NOW + H).toISOString() },
      { id: 8, instance: 'fine', expiresAt: ago(H) },
    ]
    const p = plan(facts)
    assert.deepEqual(
      p.actions
        .filter((a) => a.service === 'web')
        .map((a) => ('instance' in a ? [a.instance, a.kind === 'replace' && a.cause] : [])),
      [
        ['edited', 'drift'],
        ['fine', 'drift'],
        ['hotfixed', 'recycle'],
        ['old', 'recycle'],
      ],
    )
  })

  test('a hotfix of an instance the drift scan did not look at replaces nothing', () => {
    const facts = input()
    facts.drift = {}
    assert.deepEqual(
      plan(facts).actions.flatMap((a) => (a.kind === 'replace' ? [a.instance] : [])),
      ['old'],
    )
  })
})

describe('what each service runs', () => {
  const only = (s: ServiceFacts, releases: ReleaseView[] = []) =>
    plan({ environment: 'prod', now: NOW, services: [s], releases: { web: releases }, instances: [] })

  test('grail.lock pins the version, whatever the catalog says', () => {
    const p = only(service({ locked: { name: 'hello', version: 9, digest: D3 }, current: undefined }))
    assert.deepEqual(p.actions[0]?.kind === 'deploy' && p.actions[0].image, {
      name: 'hello',
      version: 9,
      digest: D3,
    })
  })

  test('the version of the current build key, not the newest build', () => {
    const p = only(service({ versions: [image('hello', 1, D1), image('hello', 2, D2)] }))
    assert.deepEqual(p.actions[0]?.kind === 'deploy' && p.actions[0].image.version, 1)
  })

  test('sources changed since the catalog: a build first, no release', () => {
    const p = only(service({ current: { built: false, changed: 'sources changed since v1 (index.html)' } }), [
      release(1),
    ])
    assert.deepEqual(p.builds, [
      { image: 'hello', services: ['web'], reason: 'sources changed since v1 (index.html)' },
    ])
    assert.deepEqual(
      p.actions.filter((a) => a.kind === 'deploy'),
      [],
    )
  })

  test('a promoted-to environment runs its newest promotion, not the build', () => {
    const promoted = release(4, {
      imageDigest: D2,
      imageVersion: 2,
      promotedFrom: 'staging#3',
      status: 'superseded',
    })
    const p = only(service(), [release(5), promoted])
    assert.equal(p.actions[0]?.kind, 'deploy')
    assert.match(p.actions[0]?.reason ?? '', /image hello v2 .* of release #4 \(promoted from staging#3\)/)
  })

  test('every version revoked: IMAGE_REVOKED naming the service and image', () => {
    const revoked = image('hello', 1, D1, { status: 'revoked' })
    assert.throws(
      () => only(service({ current: { built: true, image: revoked }, versions: [revoked] })),
      (e: unknown) =>
        e instanceof GrailError && e.code === 'IMAGE_REVOKED' && /service web: .*image hello/.test(e.message),
    )
  })

  test('nothing built: IMAGE_NOT_BUILT', () => {
    assert.throws(
      () => only(service({ current: { built: false, changed: 'never built' }, versions: [] })),
      (e: unknown) => e instanceof GrailError && e.code === 'IMAGE_NOT_BUILT',
    )
  })
})
