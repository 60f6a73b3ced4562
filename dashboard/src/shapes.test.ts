import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ListedImage } from '../../src/engine/images.js'
import { formatDuration, shortDigest } from './format.js'
import { topicsOf } from './live.js'
import { type OutdatedReport, outdatedRows, stillLive } from './shapes.js'
import { ancestry } from './tree.js'

test('outdated: one row per image version and package', () => {
  const report = {
    checkedAt: '2026-01-01T00:00:00Z',
    archives: [],
    images: [
      {
        image: 'web',
        version: 2,
        digest: 'sha256:aa',
        newest: true,
        runningIn: [],
        archive: 'debian bookworm (amd64)',
        updates: [
          {
            package: 'libssl3',
            architecture: 'amd64',
            locked: '3.0.11',
            available: '3.0.15',
            suite: 'bookworm-security',
            security: true,
          },
          {
            package: 'tzdata',
            architecture: 'all',
            locked: '2024a',
            available: '2025b',
            suite: 'bookworm',
            security: false,
          },
        ],
        baseOutdated: null,
      },
      {
        image: 'base',
        version: 1,
        digest: 'sha256:bb',
        newest: true,
        runningIn: [],
        archive: null,
        updates: [],
        baseOutdated: null,
      },
    ],
  } satisfies OutdatedReport
  assert.deepEqual(
    outdatedRows(report).map((r) => [r.image, r.package, r.locked, r.available, r.security]),
    [
      ['web v2', 'libssl3', '3.0.11', '3.0.15', true],
      ['web v2', 'tzdata', '2024a', '2025b', false],
    ],
  )
})

test('a hotfix stops being live when its TTL ends, whatever the fetch said', () => {
  const now = Date.parse('2026-01-01T12:00:00Z')
  assert.equal(stillLive({ live: true, expiresAt: '2026-01-01T12:00:01Z' }, now), true)
  assert.equal(stillLive({ live: true, expiresAt: '2026-01-01T12:00:00Z' }, now), false)
  assert.equal(stillLive({ live: false, expiresAt: '2026-01-01T13:00:00Z' }, now), false)
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
  assert.ok(topicsOf('reconcile.start').has('status'))
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
