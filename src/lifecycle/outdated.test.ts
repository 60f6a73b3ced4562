import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { SuiteIndex } from '../build/debian-archive.js'
import type { Digest } from '../oci/digest.js'
import type { ImageRecord } from '../state/index.js'
import { baseOutdated, packageUpdates } from './outdated.js'

const digest = (n: number) => `sha256:${String(n).padStart(64, '0')}` as Digest

function image(name: string, version: number, parent: number | null, base: unknown = null): ImageRecord {
  return {
    name,
    version,
    digest: digest(version * 100 + name.length),
    configDigest: digest(0),
    buildKey: 'k',
    parentDigest: parent === null ? null : digest(parent),
    base,
    gitCommit: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    size: 1,
    packages: [],
    status: 'active',
    statusReason: null,
  }
}

function index(suite: string, security: boolean, packages: Record<string, string>): SuiteIndex {
  return {
    uri: 'http://deb.debian.org/debian',
    suite,
    component: 'main',
    architecture: 'amd64',
    security,
    date: '2026-12-01T00:00:00.000Z',
    checkedAt: '2026-12-01T00:00:00.000Z',
    packages: new Map(Object.entries(packages)),
  }
}

describe('outdated: package updates', () => {
  const rec: ImageRecord = {
    ...image('os', 1, null),
    packages: [
      { name: 'libc6', version: '2.36-9+deb12u9', architecture: 'amd64' },
      { name: 'tzdata', version: '2025b-0+deb12u1', architecture: 'all' },
      { name: 'kitty-terminfo', version: '0.26.5-5', architecture: 'all' },
      { name: 'openssl', version: '3.0.20-1~deb12u2', architecture: 'amd64' },
      { name: 'local-only', version: '1.0', architecture: 'amd64' },
    ],
  }
  const indexes = [
    index('bookworm', false, {
      libc6: '2.36-9+deb12u13',
      tzdata: '2026b-0+deb12u1',
      'kitty-terminfo': '0.26.5-5',
      openssl: '3.0.20-1~deb12u2',
    }),
    index('bookworm-updates', false, { tzdata: '2025b-0+deb12u1', openssl: '3.0.17-1~deb12u2' }),
    index('bookworm-security', true, {
      libc6: '2.36-9+deb12u13',
      'kitty-terminfo': '0.26.5-5+deb12u1',
      openssl: '3.0.17-1~deb12u1',
    }),
  ]

  it('names the newest version of any suite, security when the security suite has a newer one', () => {
    assert.deepEqual(packageUpdates(rec, indexes), [
      {
        package: 'libc6',
        architecture: 'amd64',
        locked: '2.36-9+deb12u9',
        available: '2.36-9+deb12u13',
        // the same version in the main suite (a point release) and the security suite: from security
        suite: 'bookworm-security',
        security: true,
      },
      {
        package: 'tzdata',
        architecture: 'all',
        locked: '2025b-0+deb12u1',
        available: '2026b-0+deb12u1',
        suite: 'bookworm',
        security: false,
      },
      {
        package: 'kitty-terminfo',
        architecture: 'all',
        locked: '0.26.5-5',
        available: '0.26.5-5+deb12u1',
        suite: 'bookworm-security',
        security: true,
      },
    ])
  })

  it('an older version in a suite (updates or security behind main) is no update', () => {
    assert.equal(
      packageUpdates(rec, indexes).some((u) => u.package === 'openssl'),
      false,
    )
    assert.deepEqual(packageUpdates(rec, []), [])
  })
})

describe('outdated: a rebuilt base', () => {
  it('names the base image, the version built on and the newer one, looking through captures', () => {
    const os1 = image('os', 1, null)
    const os2 = image('os', 2, null)
    const app1 = { ...image('app', 1, null), parentDigest: os1.digest }
    const captured = { ...image('app', 2, null), parentDigest: app1.digest }
    const app3 = { ...image('app', 3, null), parentDigest: os2.digest }
    const all = [os1, os2, app1, captured, app3]
    const byDigest = new Map(all.map((i) => [i.digest, i]))
    const newest = new Map([
      ['os', os2],
      ['app', app3],
    ])
    assert.deepEqual(baseOutdated(app1, byDigest, newest), {
      image: 'os',
      version: 1,
      newer: 2,
      cause: 'base image os rebuilt: built on v1, v2 is newer',
    })
    assert.equal(
      baseOutdated(captured, byDigest, newest)?.cause,
      'base image os rebuilt: built on v1, v2 is newer',
    )
    assert.equal(baseOutdated(app3, byDigest, newest), null)
    assert.equal(baseOutdated(os1, byDigest, newest), null)
  })
})
