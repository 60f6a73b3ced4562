import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { debianSources } from './debian-archive.js'

const base = (suite: string, mirror?: string) => ({
  kind: 'debian' as const,
  suite,
  variant: 'essential' as const,
  include: [],
  components: ['main', 'contrib'],
  ...(mirror ? { mirror } : {}),
})

describe('the suites a debian base installs from (as mmdebstrap writes sources.list)', () => {
  it('a stable release without a mirror: the suite, -updates, and the security archive', () => {
    assert.deepEqual(
      debianSources(base('bookworm')).map(
        (s) => `${s.uri} ${s.suite} ${s.components.join(',')}${s.security ? ' security' : ''}`,
      ),
      [
        'http://deb.debian.org/debian bookworm main,contrib',
        'http://deb.debian.org/debian bookworm-updates main,contrib',
        'http://security.debian.org/debian-security bookworm-security main,contrib security',
      ],
    )
  })

  it('before bullseye the security suite is SUITE/updates', () => {
    assert.equal(debianSources(base('buster'))[2]?.suite, 'buster/updates')
  })

  it('unstable, testing and unknown suites have no -updates or security suite', () => {
    for (const suite of ['sid', 'unstable', 'testing'])
      assert.deepEqual(
        debianSources(base(suite)).map((s) => s.suite),
        [suite],
      )
  })

  it('a mirror: that mirror and suite alone', () => {
    assert.deepEqual(debianSources(base('bookworm', 'http://mirror.example/debian')), [
      {
        uri: 'http://mirror.example/debian',
        suite: 'bookworm',
        components: ['main', 'contrib'],
        security: false,
      },
    ])
  })
})
