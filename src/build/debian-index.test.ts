import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { GrailError } from '../errors.js'
import { parsePackages, parseRelease } from './debian-index.js'

/** The head of bookworm-security's Release (from its InRelease, as gpgv outputs it), cut short. */
const SECURITY_RELEASE = `Origin: Debian
Label: Debian-Security
Suite: oldstable-security
Version: 12
Codename: bookworm-security
Date: Tue, 01 Dec 2026 01:33:13 UTC
Valid-Until: Tue, 08 Dec 2026 01:33:13 UTC
Acquire-By-Hash: yes
Architectures: amd64 arm64 armhf i386 ppc64el
Components: updates/main updates/contrib updates/non-free-firmware updates/non-free
Description: Debian 12 - Security Updates
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all
SHA256:
 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855        0 contrib/Contents-amd64
 1bacaf872e6699fb21f408e35f828953d1d15464cb7f499bcc0b193a49f98601  2576677 main/binary-amd64/Packages
 84d8abeaf3b586eda3456716299c1d198db64a175f0e34791c9ec5678d3c4551   385496 main/binary-amd64/Packages.xz
`

/** Stanzas of bookworm main and bookworm-security main/binary-amd64 Packages, cut short. */
const PACKAGES = `Package: kitty-terminfo
Source: kitty
Version: 0.26.5-5
Installed-Size: 85
Maintainer: James McCoy <jamessan@debian.org>
Architecture: all
Description: fast, featureful, GPU based terminal emulator (terminfo file)
Multi-Arch: foreign
Filename: pool/main/k/kitty/kitty-terminfo_0.26.5-5_all.deb
SHA256: 8a202416a1187523f0380070b66cf652455fe0df0082bc1b0dfb261b653bad30

Package: tzdata
Version: 2026b-0+deb12u1
Installed-Size: 2573
Architecture: all
Provides: tzdata-bookworm
Depends: debconf (>= 0.5) | debconf-2.0
Description: time zone and daylight-saving time data

Package: kitty-terminfo
Source: kitty
Version: 0.26.5-5+deb12u1
Installed-Size: 85
Architecture: all
Description: fast, featureful, GPU based terminal emulator (terminfo file)
 Version: 9.9 (a description line is not a field)
Filename: pool/updates/main/k/kitty/kitty-terminfo_0.26.5-5+deb12u1_all.deb
`

describe('Debian archive indexes', () => {
  it('reads a Release: suite, dates, and the SHA256 list (not the MD5 one)', () => {
    const r = parseRelease(SECURITY_RELEASE, 'http://x/dists/bookworm-security/InRelease')
    assert.equal(r.codename, 'bookworm-security')
    assert.equal(r.suite, 'oldstable-security')
    assert.equal(r.date, '2026-12-01T01:33:13.000Z')
    assert.equal(r.validUntil, '2026-12-08T01:33:13.000Z')
    assert.deepEqual(r.sha256.get('main/binary-amd64/Packages.xz'), {
      sha256: '84d8abeaf3b586eda3456716299c1d198db64a175f0e34791c9ec5678d3c4551',
      size: 385496,
    })
    assert.equal(r.sha256.has('contrib/Contents-all'), false)
    assert.equal(r.sha256.size, 3)
  })

  it('refuses a Release without a date or without SHA256 hashes, naming the file', () => {
    const where = 'http://x/dists/s/InRelease'
    assert.throws(
      () => parseRelease(SECURITY_RELEASE.replace(/^Date: .*$/m, ''), where),
      (e: unknown) => e instanceof GrailError && e.code === 'ARCHIVE_INVALID' && e.message.includes(where),
    )
    assert.throws(
      () => parseRelease(SECURITY_RELEASE.replace('SHA256:', 'SHA1:'), where),
      (e: unknown) => e instanceof GrailError && /no SHA256 list/.test(e.message),
    )
  })

  it('reads a Packages index: the newest version of each package, continuation lines ignored', () => {
    const p = parsePackages(PACKAGES)
    assert.deepEqual([...p.entries()].sort(), [
      ['kitty-terminfo', '0.26.5-5+deb12u1'],
      ['tzdata', '2026b-0+deb12u1'],
    ])
    assert.equal(parsePackages('').size, 0)
  })
})
