// The archive reader refuses what it cannot trust, with a real InRelease of bookworm-updates (signed by
// the Debian archive keys) served from a file:// mirror that the test then damages on purpose.
import assert from 'node:assert/strict'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type ArchiveSuite, readArchive } from '../../src/build/debian-archive.js'
import { GrailError } from '../../src/errors.js'
import { homeAt } from '../../src/home.js'
import { removeDir, tempProject } from '../helpers/project.js'

const UPSTREAM = 'http://deb.debian.org/debian/dists/bookworm-updates'

describe('Debian archive reader (file:// mirror of bookworm-updates)', () => {
  let dir: string
  let dists: string
  let inRelease: Buffer
  let packagesXz: Buffer
  const suite = (): ArchiveSuite => ({
    uri: `file://${dir}/mirror`,
    suite: 'bookworm-updates',
    components: ['main'],
    security: false,
  })
  const read = (now = Date.now(), maxAgeMs = 0) =>
    readArchive([suite()], 'amd64', { home: homeAt(join(dir, '.grail')), maxAgeMs, now })
  const refused = (code: string, pattern: RegExp) => (e: unknown) =>
    e instanceof GrailError && e.code === code && pattern.test(e.message)

  before(async () => {
    dir = await tempProject({}, 'grail-archive-')
    dists = join(dir, 'mirror', 'dists', 'bookworm-updates')
    await mkdir(join(dists, 'main', 'binary-amd64'), { recursive: true })
    inRelease = Buffer.from(await (await fetch(`${UPSTREAM}/InRelease`)).arrayBuffer())
    packagesXz = Buffer.from(await (await fetch(`${UPSTREAM}/main/binary-amd64/Packages.xz`)).arrayBuffer())
  })
  after(async () => {
    await removeDir(dir)
  })

  test('a signed InRelease and its Packages.xz are read, then served from the cache', async () => {
    await writeFile(join(dists, 'InRelease'), inRelease)
    await writeFile(join(dists, 'main', 'binary-amd64', 'Packages.xz'), packagesXz)
    const [idx] = await read()
    assert.ok(idx && idx.packages.size > 0)
    assert.match(idx.date, /^\d{4}-\d\d-\d\dT/)
    // within maxAge the mirror is not read at all
    await writeFile(join(dists, 'InRelease'), 'gone')
    const [cached] = await read(Date.now(), 3_600_000)
    assert.equal(cached?.packages.size, idx.packages.size)
  })

  test('a tampered InRelease is refused (gpgv), naming the file', async () => {
    const text = inRelease.toString('utf8').replace(/^Date: .*$/m, 'Date: Sat, 01 Jan 2050 00:00:00 UTC')
    await writeFile(join(dists, 'InRelease'), text)
    await assert.rejects(read(), refused('ARCHIVE_UNTRUSTED', /InRelease: the signature does not check out/))
  })

  test('a Packages.xz that is not the one the Release signs is refused before it is read', async () => {
    await writeFile(join(dists, 'InRelease'), inRelease)
    await writeFile(
      join(dists, 'main', 'binary-amd64', 'Packages.xz'),
      Buffer.concat([packagesXz, Buffer.from('x')]),
    )
    // the cache holds the right hash: forget it so the file is downloaded
    const archive = join(dir, '.grail', 'archive')
    for (const f of await readdir(archive)) {
      const path = join(archive, f)
      const c = JSON.parse(await readFile(path, 'utf8')) as { index: string }
      await writeFile(path, JSON.stringify({ ...c, index: 'none' }))
    }
    await assert.rejects(read(), refused('ARCHIVE_HASH_MISMATCH', /Packages\.xz: \d+ bytes with SHA256/))
  })

  test('a suite older than the one read before is refused (a replayed InRelease)', async () => {
    await writeFile(join(dists, 'main', 'binary-amd64', 'Packages.xz'), packagesXz)
    const archive = join(dir, '.grail', 'archive')
    for (const f of await readdir(archive)) {
      const path = join(archive, f)
      const c = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
      await writeFile(path, JSON.stringify({ ...c, date: '2099-01-01T00:00:00.000Z' }))
    }
    await assert.rejects(read(), refused('ARCHIVE_UNTRUSTED', /older than the 2099-01-01/))
  })

  test('a missing keyring is named, with the package that has it', async () => {
    await assert.rejects(
      readArchive([suite()], 'amd64', {
        home: homeAt(join(dir, '.grail-2')),
        maxAgeMs: 0,
        now: Date.now(),
        keyring: join(dir, 'no-such.gpg'),
      }),
      (e: unknown) =>
        e instanceof GrailError &&
        e.code === 'ARCHIVE_UNTRUSTED' &&
        /debian-archive-keyring/.test(e.hint ?? ''),
    )
  })
})
