import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { ServiceSpec } from '../spec/types.js'
import { configBundleOf, configDigest } from './config-bundle.js'
import { planActions } from './plan.js'
import type { DesiredService, InstanceView, ReleaseView } from './types.js'

const D1 = `sha256:${'1'.repeat(64)}` as const
const D2 = `sha256:${'2'.repeat(64)}` as const
const C1 = `sha256:${'a'.repeat(64)}` as const
const C2 = `sha256:${'b'.repeat(64)}` as const

const want = (over: Partial<DesiredService> = {}): DesiredService => ({
  service: 'web',
  replicas: 3,
  image: { name: 'hello', version: 2, digest: D1 },
  configDigest: C1,
  ...over,
})
const release = (number: number, over: Partial<ReleaseView> = {}): ReleaseView => ({
  number,
  imageDigest: D1,
  configDigest: C1,
  imageName: 'hello',
  imageVersion: 2,
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
  ...over,
})
const healthy3 = [inst('a'), inst('b'), inst('c')]

describe('plan', () => {
  test('a converged service plans nothing', () => {
    assert.deepEqual(
      planActions({
        environment: 'local',
        desired: [want()],
        releases: { web: [release(1)] },
        instances: healthy3,
      }).actions,
      [],
    )
  })

  test('the first deploy of a service is a new release', () => {
    const p = planActions({ environment: 'local', desired: [want()], releases: {}, instances: [] })
    assert.deepEqual(p.actions, [
      {
        kind: 'deploy',
        service: 'web',
        from: null,
        image: want().image,
        configDigest: C1,
        cause: 'first',
        reason: 'new release: first deploy',
      },
    ])
  })

  test('a new image digest is a new release naming the image version', () => {
    const p = planActions({
      environment: 'local',
      desired: [want({ image: { name: 'hello', version: 3, digest: D2 } })],
      releases: { web: [release(1)] },
      instances: healthy3,
    })
    assert.equal(p.actions.length, 1)
    assert.equal(p.actions[0]?.kind, 'deploy')
    assert.match(
      p.actions[0]?.reason ?? '',
      /^new release: image hello v3 \(222222222222\) replaces 111111111111$/,
    )
  })

  test('an image that needs a build is listed once, deploys nothing, and what runs is still healed', () => {
    const build = { image: 'hello', reason: 'sources changed since v2 (site/index.html)' }
    const p = planActions({
      environment: 'local',
      desired: [
        want({ image: null, build, configDigest: C2 }),
        want({ service: 'api', image: null, build, replicas: 1 }),
      ],
      releases: { web: [release(1)] },
      instances: [inst('a'), inst('b'), inst('c', { state: 'stopped' })],
    })
    assert.deepEqual(p.builds, [{ image: 'hello', services: ['web', 'api'], reason: build.reason }])
    assert.deepEqual(
      p.actions.map((a) => [a.kind, a.service, 'instance' in a ? a.instance : '']),
      [['replace', 'web', 'c']],
    )
  })

  test('a config-only change is a new release with the same image', () => {
    const p = planActions({
      environment: 'local',
      desired: [want({ configDigest: C2 })],
      releases: { web: [release(1)] },
      instances: healthy3,
    })
    assert.deepEqual(
      p.actions.map((a) => [a.kind, a.reason]),
      [['deploy', 'new release: config changed']],
    )
  })

  test('missing, crashed and unhealthy instances are replaced, each with its reason', () => {
    const p = planActions({
      environment: 'local',
      desired: [want()],
      releases: { web: [release(1)] },
      instances: [
        inst('a', { state: 'missing' }),
        inst('b', { state: 'stopped' }),
        inst('c', { health: 'unhealthy' }),
      ],
    })
    assert.deepEqual(
      p.actions.map((a) => [a.kind, 'instance' in a ? a.instance : '', a.reason]),
      [
        ['replace', 'a', 'missing'],
        ['replace', 'b', 'crashed: process exited'],
        ['replace', 'c', 'unhealthy: health check failing'],
      ],
    )
  })

  test('too few or too many replicas scale', () => {
    const up = planActions({
      environment: 'local',
      desired: [want({ replicas: 5 })],
      releases: { web: [release(1)] },
      instances: healthy3,
    })
    assert.deepEqual(up.actions, [
      { kind: 'scale-up', service: 'web', release: 1, count: 2, reason: '3 of 5 replicas' },
    ])
    const down = planActions({
      environment: 'local',
      desired: [want({ replicas: 1 })],
      releases: { web: [release(1)] },
      instances: healthy3,
    })
    assert.deepEqual(down.actions, [
      { kind: 'scale-down', service: 'web', instances: ['a', 'b'], reason: '3 of 1 replicas' },
    ])
  })

  test('orphans, leftovers of older releases and removed services are destroyed', () => {
    const p = planActions({
      environment: 'local',
      desired: [want({ replicas: 1 })],
      releases: { web: [release(1, { status: 'superseded' }), release(2)] },
      instances: [
        inst('new', { release: 2 }),
        inst('old', { release: 1 }),
        inst('stray', { known: false }),
        inst('gone', { service: 'api' }),
      ],
    })
    assert.deepEqual(
      p.actions.map((a) => [a.kind, 'instance' in a ? a.instance : '', a.reason]),
      [
        ['destroy', 'old', 'superseded: release 1 < active 2'],
        ['destroy', 'stray', 'orphan: not in Grail state'],
        ['destroy', 'gone', 'removed: service api is no longer in the spec'],
      ],
    )
  })
})

describe('config bundles', () => {
  const svc = (env: Record<string, string>): ServiceSpec =>
    ({
      name: 'web',
      image: 'hello',
      replicas: 1,
      env,
      files: {},
      volumes: [],
      port: 8080,
    }) as unknown as ServiceSpec

  test('the same env in any key order has the same digest; a changed value does not', () => {
    const a = configDigest(configBundleOf(svc({ A: '1', B: '2' })))
    const b = configDigest(configBundleOf(svc({ B: '2', A: '1' })))
    const c = configDigest(configBundleOf(svc({ A: '1', B: '3' })))
    assert.equal(a, b)
    assert.notEqual(a, c)
  })

  test('replacements and removals carry their cause; routine recycling comes last, in its order', () => {
    const p = planActions({
      environment: 'local',
      desired: [want({ replicas: 4 })],
      releases: { web: [release(1)] },
      instances: [
        inst('a', { recycle: { reason: 'age 8d > maxAge 7d', rank: 1 } }),
        inst('b', { recycle: { reason: 'age 9d > maxAge 7d', rank: 0 } }),
        inst('c', { drift: '1 file (C /etc/x)' }),
        inst('d', { state: 'stopped' }),
        inst('x', { known: false }),
      ],
    })
    assert.deepEqual(
      p.actions.map((a) => [
        a.kind,
        'instance' in a ? a.instance : '',
        'cause' in a ? a.cause : '',
        a.reason,
      ]),
      [
        ['replace', 'c', 'drift', 'drift: 1 file (C /etc/x)'],
        ['replace', 'd', 'crashed', 'crashed: process exited'],
        ['replace', 'b', 'recycle', 'age 9d > maxAge 7d'],
        ['replace', 'a', 'recycle', 'age 8d > maxAge 7d'],
        ['destroy', 'x', 'orphan', 'orphan: not in Grail state'],
      ],
    )
  })

  test('an unhealthy instance is replaced with what its probes saw', () => {
    const p = planActions({
      environment: 'local',
      desired: [want()],
      releases: { web: [release(1)] },
      instances: [
        inst('a', { health: 'unhealthy', healthDetail: 'HTTP 404, 3 probes in a row' }),
        inst('b'),
        inst('c'),
      ],
    })
    assert.deepEqual(p.actions, [
      {
        kind: 'replace',
        service: 'web',
        instance: 'a',
        release: 1,
        cause: 'unhealthy',
        reason: 'unhealthy: HTTP 404, 3 probes in a row',
      },
    ])
    assert.deepEqual(p.waiting, [])
  })

  test('an instance changed by hand that is also unhealthy is replaced for its drift, naming both', () => {
    const p = planActions({
      environment: 'local',
      desired: [want()],
      releases: { web: [release(1)] },
      instances: [
        inst('a', {
          health: 'unhealthy',
          healthDetail: 'connection refused',
          drift: 'env: GREETING changed',
        }),
        inst('b'),
        inst('c'),
      ],
    })
    assert.deepEqual(
      p.actions.map((a) => ('cause' in a ? [a.cause, a.reason] : [])),
      [['drift', 'drift: env: GREETING changed (also unhealthy: connection refused)']],
    )
  })

  describe('crash loops', () => {
    const loopSpec = { restarts: 3, window: 600_000, backoff: 30_000, maxBackoff: 600_000 }
    const T = Date.parse('2026-01-01T12:00:00Z')
    const restarts = { web: [1, 2, 3].map((s) => ({ release: 1, at: T + s * 1000 })) }
    const crashed = [inst('a', { state: 'stopped' }), inst('b'), inst('c')]
    const input = (over: Partial<Parameters<typeof planActions>[0]> = {}) => ({
      environment: 'local',
      desired: [want({ crashLoop: loopSpec })],
      releases: { web: [release(1)] },
      instances: crashed,
      restarts,
      logTails: { a: ['listening on 8080', 'fatal: out of cheese'] },
      ...over,
    })

    test('during the backoff the crashed instance is held back, with its log', () => {
      const p = planActions(input({ now: T + 10_000 }))
      assert.deepEqual(p.actions, [])
      assert.deepEqual(p.waiting, [
        {
          service: 'web',
          instance: 'a',
          reason: 'crashed: process exited; crash loop: 3 restarts in 2s, next attempt in 23s',
          nextAttemptAt: new Date(T + 33_000).toISOString(),
          log: ['listening on 8080', 'fatal: out of cheese'],
        },
      ])
    })

    test('after the backoff it is replaced again, and the reason says why it waited', () => {
      const p = planActions(input({ now: T + 33_000 }))
      assert.deepEqual(p.waiting, [])
      assert.equal(p.actions.length, 1)
      assert.equal(
        (p.actions[0] as { reason: string }).reason,
        'crashed: process exited; crash loop: 3 restarts in 2s, retrying after a 30s backoff',
      )
    })

    test('missing replicas of a crash-looping release wait too', () => {
      const p = planActions(input({ now: T + 10_000, instances: [inst('b'), inst('c')] }))
      assert.deepEqual(p.actions, [])
      assert.equal(p.waiting[0]?.instance, null)
      assert.match(p.waiting[0]?.reason ?? '', /^2 of 3 replicas; crash loop: 3 restarts/)
    })

    test('a new release is deployed whatever the loop of the old one', () => {
      const p = planActions(
        input({ now: T + 10_000, desired: [want({ crashLoop: loopSpec, configDigest: C2 })] }),
      )
      assert.deepEqual(
        p.actions.map((a) => a.kind),
        ['deploy'],
      )
      assert.deepEqual(p.waiting, [])
    })

    test('without a clock the planner cannot tell a loop and replaces as before', () => {
      const p = planActions(input())
      assert.deepEqual(
        p.actions.map((a) => a.kind),
        ['replace'],
      )
    })
  })
})

test('a service with nothing marked secret has the config bundle (and digest) it had before secrets existed', () => {
  const svc = { env: { A: '1' }, files: { '/etc/a': 'x' }, volumes: [], secret: { env: [], files: [] } }
  const bundle = configBundleOf(svc as unknown as ServiceSpec)
  assert.deepEqual(Object.keys(bundle).sort(), ['env', 'files', 'port', 'volumes'])
  const marked = configBundleOf({ ...svc, secret: { env: ['A'], files: [] } } as unknown as ServiceSpec)
  assert.deepEqual(marked.secret, { env: ['A'], files: [] })
  assert.notEqual(configDigest(marked), configDigest(bundle))
})
