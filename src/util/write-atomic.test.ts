import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { renameDurably, writeAtomic } from './write-atomic.js'

const mode = async (p: string) => (await stat(p)).mode & 0o7777

describe('writeAtomic', () => {
  let root: string
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'grail-atomic-'))
  })
  after(() => rm(root, { recursive: true, force: true }))

  test('writes text, bytes and streams; an explicit mode is exact whatever the umask, else the umask applies', async () => {
    const old = process.umask(0o022)
    try {
      await writeAtomic(join(root, 'text'), 'héllo\n')
      assert.equal(await readFile(join(root, 'text'), 'utf8'), 'héllo\n')
      assert.equal(await mode(join(root, 'text')), 0o644)
      await writeAtomic(join(root, 'bytes'), Buffer.from([0, 1, 2, 255]), { mode: 0o600 })
      assert.deepEqual([...(await readFile(join(root, 'bytes')))], [0, 1, 2, 255])
      assert.equal(await mode(join(root, 'bytes')), 0o600)
      process.umask(0o777)
      async function* chunks() {
        yield 'a'
        yield Buffer.from('b')
      }
      await writeAtomic(join(root, 'stream'), chunks(), { mode: 0o640 })
      assert.equal(await readFile(join(root, 'stream'), 'utf8'), 'ab')
      assert.equal(await mode(join(root, 'stream')), 0o640)
      // replacing a file gives it the new mode (a loose file written private becomes private)
      await writeFile(join(root, 'loose'), 'x', { mode: 0o666 })
      await writeAtomic(join(root, 'loose'), 'y', { mode: 0o600 })
      assert.equal(await mode(join(root, 'loose')), 0o600)
    } finally {
      process.umask(old)
    }
    assert.deepEqual(
      (await readdir(root)).filter((n) => n.endsWith('.tmp')),
      [],
    )
  })

  test('a write that fails half-way leaves the old file as it was and no temp file behind', async () => {
    const file = join(root, 'kept')
    await writeFile(file, 'old content\n', { mode: 0o640 })
    async function* failing() {
      yield Buffer.alloc(64 * 1024, 'n')
      throw new Error('the producer died')
    }
    await assert.rejects(writeAtomic(file, failing(), { mode: 0o600 }), /the producer died/)
    assert.equal(await readFile(file, 'utf8'), 'old content\n')
    assert.equal(await mode(file), 0o640)
    assert.deepEqual(
      (await readdir(root)).filter((n) => n.startsWith('.kept')),
      [],
    )
    // a directory that is not there: nothing is created
    await assert.rejects(writeAtomic(join(root, 'nope', 'f'), 'x'), { code: 'ENOENT' })
  })

  test('a full disk (a real ENOSPC on a small tmpfs) leaves the old file and no temp file', async (t) => {
    const small = await mkdtemp(join(tmpdir(), 'grail-atomic-full-'))
    try {
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small], { stdio: 'ignore' })
      } catch {
        t.skip('cannot mount a tmpfs here (not root?)')
        return
      }
      try {
        const file = join(small, 'state.json')
        await writeAtomic(file, '{"version":1}\n')
        await assert.rejects(writeAtomic(file, Buffer.alloc(256 * 1024, 'x')), { code: 'ENOSPC' })
        assert.equal(await readFile(file, 'utf8'), '{"version":1}\n')
        assert.deepEqual(await readdir(small), ['state.json'])
      } finally {
        execFileSync('umount', [small])
      }
    } finally {
      await rm(small, { recursive: true, force: true })
    }
  })

  test('concurrent writers and a reader: every read is one whole version, never a torn mix', async () => {
    const file = join(root, 'contended')
    const versions = Array.from({ length: 12 }, (_, i) =>
      Buffer.alloc(256 * 1024 + i, String.fromCharCode(97 + i)),
    )
    await writeAtomic(file, versions[0] as Buffer)
    let done = false
    const reads: Buffer[] = []
    const reader = (async () => {
      while (!done) reads.push(await readFile(file))
    })()
    await Promise.all(versions.map((v) => writeAtomic(file, v)))
    done = true
    await reader
    assert.ok(reads.length > 0)
    const whole = new Set(versions.map((v) => v.toString('latin1')))
    for (const r of reads)
      assert.ok(whole.has(r.toString('latin1')), `a read of ${r.length} bytes is one version`)
    assert.ok(whole.has((await readFile(file)).toString('latin1')))
    assert.deepEqual(
      (await readdir(root)).filter((n) => n.startsWith('.contended')),
      [],
    )
  })

  test('exclusive: the first writer wins, a second gets EEXIST and changes nothing, no temp is left', async () => {
    const file = join(root, 'claimed')
    const results = await Promise.allSettled(
      ['one', 'two', 'three'].map((v) => writeAtomic(file, `${v}\n`, { exclusive: true })),
    )
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
    for (const r of results)
      if (r.status === 'rejected') assert.equal((r.reason as NodeJS.ErrnoException).code, 'EEXIST')
    assert.match(await readFile(file, 'utf8'), /^(one|two|three)\n$/)
    assert.deepEqual(
      (await readdir(root)).filter((n) => n.startsWith('.claimed')),
      [],
    )
  })

  test('renameDurably moves a finished temp file into place, and removes it when the move fails', async () => {
    const tmp = join(root, 'blob.partial')
    await writeFile(tmp, 'blob')
    await renameDurably(tmp, join(root, 'blob'))
    assert.equal(await readFile(join(root, 'blob'), 'utf8'), 'blob')
    await writeFile(tmp, 'again')
    await assert.rejects(renameDurably(tmp, join(root, 'missing-dir', 'blob')), { code: 'ENOENT' })
    await assert.rejects(stat(tmp), { code: 'ENOENT' })
  })
})

test('durable: false replaces the file whole and leaves no temp file (a cache, not fsynced)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-atomic-cache-'))
  try {
    const file = join(dir, 'cache.json')
    await writeFile(file, 'old')
    await writeAtomic(file, '{"a":1}', { durable: false })
    assert.equal(await readFile(file, 'utf8'), '{"a":1}')
    assert.deepEqual(await readdir(dir), ['cache.json'])
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
