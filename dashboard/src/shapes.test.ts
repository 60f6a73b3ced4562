import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatDuration, shortDigest } from './format.js'
import { topicsOf } from './live.js'
import { environmentsOf, hotfixesOf, outdatedOf, servicesOf } from './shapes.js'
import { ancestry } from './tree.js'
import type { ListedImage } from '../../src/engine/images.js'

test('services: recycle.maxAge and drift policy under the names the API may use', () => {
  assert.deepEqual(
    servicesOf([
      {
        name: 'web',
        image: 'web',
        replicas: 2,
        activeRelease: 3,
        recycle: { maxAge: 60000 },
        drift: { policy: 'fix' },
      },
      { name: 'db', replicas: 1, maxAge: null, driftPolicy: 'report', active: { number: 1 } },
      { nope: true },
    ]),
    [
      { name: 'web', image: 'web', replicas: 2, activeRelease: 3, maxAgeMs: 60000, driftPolicy: 'fix' },
      { name: 'db', image: null, replicas: 1, activeRelease: 1, maxAgeMs: null, driftPolicy: 'report' },
    ],
  )
  assert.deepEqual(servicesOf({ services: [{ name: 'a' }] })[0]?.name, 'a')
})

test('environments: names and their services, as objects or strings', () => {
  assert.deepEqual(
    environmentsOf([{ name: 'prod', provider: 'local', services: ['web', { name: 'db' }] }, 'dev']),
    [
      { name: 'prod', provider: 'local', services: ['web', 'db'] },
      { name: 'dev', provider: null, services: [] },
    ],
  )
})

test('hotfixes: live until the TTL ends, newest first, files from changes', () => {
  const now = Date.parse('2026-01-01T12:00:00Z')
  const rows = hotfixesOf(
    [
      {
        id: 1,
        instance: 'web-1',
        reason: 'old',
        expiresAt: '2026-01-01T11:00:00Z',
        changes: [{ kind: 'C', path: '/etc/motd' }],
      },
      {
        id: 2,
        instance: 'web-2',
        reason: 'now',
        command: ['sh', '-c', 'x'],
        expiresAt: '2026-01-01T12:05:00Z',
      },
      { id: 3, instance: 'web-3', reason: 'cut', status: 'interrupted', expiresAt: '2026-01-01T12:05:00Z' },
    ],
    now,
  )
  assert.deepEqual(
    rows.map((r) => [r.id, r.live, r.files]),
    [
      [3, false, []],
      [2, true, []],
      [1, false, ['C /etc/motd']],
    ],
  )
  assert.deepEqual(
    hotfixesOf(
      {
        live: [{ id: 5, instance: 'a', expiresAt: '2026-01-01T13:00:00Z' }],
        past: [{ id: 4, instance: 'b' }],
      },
      now,
    ).map((r) => r.live),
    [true, false],
  )
})

test('outdated: flat rows or images with their packages', () => {
  const flat = outdatedOf([
    {
      image: 'web',
      imageVersion: 2,
      package: 'libssl3',
      locked: '3.0.11',
      available: '3.0.15',
      security: true,
    },
  ])
  const nested = outdatedOf({
    images: [
      {
        name: 'web',
        version: 2,
        packages: [{ name: 'libssl3', version: '3.0.11', available: '3.0.15', security: true }],
      },
    ],
  })
  const want = [
    { image: 'web v2', package: 'libssl3', locked: '3.0.11', available: '3.0.15', security: true },
  ]
  assert.deepEqual(flat, want)
  assert.deepEqual(nested, want)
  assert.deepEqual(outdatedOf({ nothing: 1 }), [])
})

test('ancestry: children under the version they were built on, roots when the parent is not in the catalog', () => {
  const img = (name: string, version: number, digest: string, parentDigest: string | null) =>
    ({ name, version, digest, parentDigest }) as unknown as ListedImage
  const forest = ancestry([
    img('web', 2, 'w2', 'b1'),
    img('base', 1, 'b1', null),
    img('web', 1, 'w1', 'b1'),
    img('x', 1, 'x1', 'gone'),
  ])
  const show = (n: (typeof forest)[number]): unknown => [
    `${n.image.name}@${n.image.version}`,
    n.children.map(show),
  ]
  assert.deepEqual(forest.map(show), [
    [
      'base@1',
      [
        ['web@1', []],
        ['web@2', []],
      ],
    ],
    ['x@1', []],
  ])
})

test('topics: what each kind of event makes a page refetch', () => {
  assert.ok(topicsOf('reconcile.action').has('status'))
  assert.ok(topicsOf('image.revoked').has('images'))
  assert.ok(!topicsOf('image.revoked').has('hotfixes'))
  assert.ok(topicsOf('hotfix.applied').has('drift'))
  assert.ok(topicsOf('patch.outdated').has('outdated'))
  assert.ok(topicsOf('something.new').has('status'))
  for (const k of ['a', 'image.built', 'release.active']) assert.ok(topicsOf(k).has('events'))
})

test('durations and digests as the CLI shows them', () => {
  assert.deepEqual(
    [0, 45_000, 200_000, 3_600_000, 7_500_000, 90_000_000, 86_400_000 * 7].map(formatDuration),
    ['0s', '45s', '3m 20s', '1h', '2h 5m', '1d 1h', '7d'],
  )
  assert.equal(shortDigest('sha256:0123456789abcdef'), 'sha256:0123456789ab')
  assert.equal(shortDigest(null), '-')
})
