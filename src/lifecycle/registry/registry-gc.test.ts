// The pure part of `gc --registry` (which manifests a sweep may delete) and of the shared build cache's
// map (parsing untrusted bytes, merging, the manifest's layer list).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type GcImage, type GcInput, planGc, planRegistrySweep, rootDigests } from '../gc-plan.js'
import type { Digest } from '../../oci/digest.js'
import { type CacheMap, mapLayers, mergeCacheMaps, parseCacheMap } from './cache.js'

const d = (n: number): Digest => `sha256:${n.toString(16).padStart(64, '0')}`
const DAY = 86_400_000
const NOW = Date.parse('2026-12-01T00:00:00Z')

function image(version: number, extra: Partial<GcImage> = {}): GcImage {
  return {
    name: 'web',
    version,
    digest: d(version),
    parentDigest: null,
    createdAt: new Date(NOW - (100 - version) * DAY).toISOString(),
    blobs: [d(version)],
    pinned: false,
    ...extra,
  }
}

function input(images: GcImage[], extra: Partial<GcInput> = {}): GcInput {
  return {
    images,
    releases: [],
    running: [],
    policy: { keepVersions: 1, keepDeployedWithin: 0, keepReleases: 1 },
    now: NOW,
    ...extra,
  }
}

test('every root protects its digest: running, grail.lock, rollback target, recent or promoted release, pin', () => {
  const images = [1, 2, 3, 4, 5, 6, 7, 8].map((v) => image(v, { pinned: v === 5 }))
  const rel = (n: number, v: number, at: number, promotedFrom: string | null = null) => ({
    service: 'web',
    environment: 'prod',
    number: n,
    imageDigest: d(v),
    status: 'superseded',
    createdAt: new Date(at).toISOString(),
    promotedFrom,
  })
  const inp = input(images, {
    running: [d(1)],
    locked: [{ name: 'web', digest: d(2) }],
    releases: [rel(1, 6, NOW - 30 * DAY, 'staging'), rel(2, 4, NOW - 1)],
    policy: { keepVersions: 1, keepDeployedWithin: 7 * DAY, keepReleases: 1 },
  })
  const roots = rootDigests(inp)
  assert.equal(roots.get(d(1)), 'running')
  assert.match(roots.get(d(2)) ?? '', /grail\.lock/)
  assert.match(roots.get(d(4)) ?? '', /rollback target/)
  assert.match(roots.get(d(5)) ?? '', /pinned/)
  assert.match(roots.get(d(6)) ?? '', /promoted/)
  const plan = planGc(inp)
  const { doomed } = planRegistrySweep(inp, plan, [])
  // 8 is the newest version; 3 and 7 are what nothing needs
  assert.deepEqual(
    doomed.map((c) => c.version),
    [3, 7],
  )
})

test('a tombstone whose digest a kept version has again (rebuilt to the same bytes) is spared', () => {
  const images = [image(9, { digest: d(3) })]
  const inp = input(images)
  const { doomed, spared } = planRegistrySweep(inp, planGc(inp), [
    { name: 'web', version: 3, digest: d(3) },
    { name: 'web', version: 4, digest: d(4) },
  ])
  assert.deepEqual(
    doomed.map((c) => c.version),
    [4],
  )
  assert.deepEqual(
    spared.map((s) => [s.version, s.why]),
    [[3, 'web@9 is kept: one of the newest 1 versions']],
  )
})

test('an ancestor of what runs is protected by digest; a version is a candidate once however it is found', () => {
  const images = [image(1), image(2, { parentDigest: d(1) }), image(3)]
  const inp = input(images, {
    running: [d(2)],
    policy: { keepVersions: 1, keepDeployedWithin: 0, keepReleases: 1 },
  })
  const plan = planGc(inp)
  const { doomed } = planRegistrySweep(inp, plan, [{ name: 'web', version: 1, digest: d(1) }])
  assert.deepEqual(doomed, [])
  const none = planRegistrySweep(inp, plan, [
    { name: 'web', version: 0, digest: d(99) },
    { name: 'web', version: 0, digest: d(99) },
  ])
  assert.deepEqual(
    none.doomed.map((c) => c.version),
    [0],
  )
})

const layer = (n: number) => ({
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  digest: d(n),
  diffId: d(1000 + n),
  size: n,
})

test('a cache map from a registry: malformed entries are dropped, never trusted', () => {
  const raw = {
    format: 1,
    layers: {
      good: { ...layer(1), at: '2026-01-01T00:00:00Z' },
      badDigest: { ...layer(2), digest: '../../etc/passwd' },
      badMedia: { ...layer(3), mediaType: 'text/plain' },
      negative: { ...layer(4), size: -1 },
    },
    bases: {
      good: {
        layers: [layer(5)],
        config: { rootfs: { type: 'layers', diff_ids: [d(1005)] } },
        packages: [],
        parentDigest: null,
        at: '2026-01-01T00:00:00Z',
      },
      // the config's diff ids are not the layers': an image built on it would not unpack to its config
      inconsistent: {
        layers: [layer(6)],
        config: { rootfs: { type: 'layers', diff_ids: [d(7)] } },
        packages: [],
        parentDigest: null,
      },
      badParent: {
        layers: [],
        config: { rootfs: { type: 'layers', diff_ids: [] } },
        packages: [],
        parentDigest: 'x',
      },
    },
  }
  const map = parseCacheMap(Buffer.from(JSON.stringify(raw)))
  assert.deepEqual(Object.keys(map.layers), ['good'])
  assert.deepEqual(Object.keys(map.bases), ['good'])
  assert.deepEqual(parseCacheMap(Buffer.from('{"format":2,"layers":{"k":{}}}')), {
    format: 1,
    layers: {},
    bases: {},
  })
  assert.throws(() => parseCacheMap(Buffer.from('not json')))
})

test('merging keeps mine over theirs and the newest N keys; the manifest names each layer once', () => {
  const at = (i: number) => new Date(NOW + i * 1000).toISOString()
  const theirs: CacheMap = {
    format: 1,
    layers: Object.fromEntries([1, 2, 3].map((i) => [`k${i}`, { ...layer(i), at: at(i) }])),
    bases: {},
  }
  const mine: CacheMap = {
    format: 1,
    layers: { k1: { ...layer(9), at: at(10) }, k4: { ...layer(2), at: at(11) } },
    bases: {
      b: { layers: [layer(9)], config: {}, packages: [], parentDigest: null, at: at(12) },
    },
  }
  const merged = mergeCacheMaps(theirs, mine, 3)
  assert.deepEqual(Object.keys(merged.layers).sort(), ['k1', 'k3', 'k4'])
  assert.equal(merged.layers.k1?.digest, d(9))
  assert.deepEqual(
    mapLayers(merged).map((l) => l.digest),
    [d(2), d(3), d(9)],
  )
})
