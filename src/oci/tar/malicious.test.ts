import assert from 'node:assert/strict'
import { lstat, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import type { Header } from 'tar-stream'
import { GrailError } from '../../errors.js'
import { extractLayer } from './index.js'
import { craftTar, tempDir } from './testing.js'

type Crafted = Partial<Header> & { name: string; content?: string }

/**
 * base/root is the extraction root, base/outside a sentinel holding one file. Every hostile archive must
 * be refused, and afterwards the sentinel and base must look exactly as before.
 */
async function setup(t: TestContext) {
  const base = await tempDir(t)
  const root = join(base, 'root')
  const outside = join(base, 'outside')
  await mkdir(root)
  await mkdir(outside)
  await writeFile(join(outside, 'secret.txt'), 'untouched')
  return { base, root, outside }
}

async function assertRefused(
  t: TestContext,
  entries: (paths: { outside: string }) => Crafted[],
  badName: string | ((paths: { outside: string }) => string),
  opts: { prepare?: (root: string) => Promise<void>; after?: (root: string) => Promise<void> } = {},
): Promise<void> {
  const { base, root, outside } = await setup(t)
  await opts.prepare?.(root)
  const archive = join(base, 'evil.tar')
  await writeFile(archive, await craftTar(entries({ outside })))
  const passwd = await stat('/etc/passwd')
  const name = typeof badName === 'string' ? badName : badName({ outside })
  await assert.rejects(
    extractLayer(archive, root, { mode: 'apply', label: 'evil-layer' }),
    (err: unknown) => {
      assert.ok(err instanceof GrailError, `expected a GrailError, got ${String(err)}`)
      assert.equal(err.code, 'UNSAFE_TAR')
      assert.match(err.message, /evil-layer/)
      assert.ok(err.message.includes(`"${name}"`), `message names the entry: ${err.message}`)
      return true
    },
  )
  assert.deepEqual(await readdir(outside), ['secret.txt'])
  assert.equal(await readFile(join(outside, 'secret.txt'), 'utf8'), 'untouched')
  assert.equal((await stat(join(outside, 'secret.txt'))).nlink, 1)
  assert.deepEqual((await readdir(base)).sort(), ['evil.tar', 'outside', 'root'])
  assert.equal((await stat('/etc/passwd')).nlink, passwd.nlink)
  await opts.after?.(root)
}

const file = (name: string, content = 'pwned'): Crafted => ({ name, type: 'file', content })

describe('hostile archives are refused before anything is written through them', () => {
  test('../evil', (t) => assertRefused(t, () => [file('ok'), file('../evil')], '../evil'))

  test('a/../../evil', (t) => assertRefused(t, () => [file('a/../../evil')], 'a/../../evil'))

  test('an absolute path', async (t) => {
    await assertRefused(
      t,
      ({ outside }) => [file(`${outside}/abs-evil`)],
      ({ outside }) => `${outside}/abs-evil`,
    )
  })

  test('a symlink to a directory outside, then a file through it', (t) =>
    assertRefused(
      t,
      ({ outside }) => [{ name: 'link', type: 'symlink', linkname: outside }, file('link/pwned')],
      'link/pwned',
      {
        // the symlink itself is fine: it is created, never followed
        after: async (root) => assert.ok((await lstat(join(root, 'link'))).isSymbolicLink()),
      },
    ))

  test('a symlink to .. then a file through it', (t) =>
    assertRefused(t, () => [{ name: 'up', type: 'symlink', linkname: '..' }, file('up/evil')], 'up/evil'))

  test('a symlink already in the target, then a nested path through it', (t) =>
    assertRefused(t, () => [file('pre/deeper/evil')], 'pre/deeper/evil', {
      prepare: (root) => symlink('../outside', join(root, 'pre')),
    }))

  test('a hardlink to ../../etc/passwd', (t) =>
    assertRefused(t, () => [{ name: 'h', type: 'link', linkname: '../../etc/passwd' }], 'h'))

  test('a hardlink with an absolute target', (t) =>
    assertRefused(t, () => [{ name: 'h', type: 'link', linkname: '/etc/passwd' }], 'h'))

  test('a hardlink to a symlink that points outside', (t) =>
    assertRefused(
      t,
      ({ outside }) => [
        { name: 's', type: 'symlink', linkname: join(outside, 'secret.txt') },
        { name: 'h', type: 'link', linkname: 's' },
      ],
      'h',
    ))

  test('a hardlink resolved through a symlinked directory', (t) =>
    assertRefused(
      t,
      ({ outside }) => [
        { name: 'd', type: 'symlink', linkname: outside },
        { name: 'h', type: 'link', linkname: 'd/secret.txt' },
      ],
      'h',
    ))

  test('a hardlink to a file that does not exist', (t) =>
    assertRefused(t, () => [{ name: 'h', type: 'link', linkname: 'missing' }], 'h'))

  test('a whiteout of ..', (t) => assertRefused(t, () => [file('sub/.wh...', '')], 'sub/.wh...'))

  test('a character device', (t) =>
    assertRefused(
      t,
      () => [{ name: 'dev/mem2', type: 'character-device', devmajor: 1, devminor: 1 }],
      'dev/mem2',
    ))

  test('a block device', (t) =>
    assertRefused(
      t,
      () => [{ name: 'dev/sda9', type: 'block-device', devmajor: 8, devminor: 9 }],
      'dev/sda9',
    ))

  test('an empty name', (t) => assertRefused(t, () => [file('')], ''))
})

test('devices are created when allowDevices is set', async (t) => {
  const { base, root } = await setup(t)
  const archive = join(base, 'dev.tar')
  await writeFile(
    archive,
    await craftTar([
      { name: 'dev/', type: 'directory', mode: 0o755 },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loop9', type: 'block-device', devmajor: 7, devminor: 9, mode: 0o660, gid: 6 },
      { name: 'dev/fifo', type: 'fifo', mode: 0o600 },
    ]),
  )
  await extractLayer(archive, root, { mode: 'apply', allowDevices: true })
  const nul = await lstat(join(root, 'dev/null'))
  assert.ok(nul.isCharacterDevice())
  assert.equal(nul.rdev, (1 << 8) | 3)
  assert.equal(nul.mode & 0o7777, 0o666)
  const loop = await lstat(join(root, 'dev/loop9'))
  assert.ok(loop.isBlockDevice())
  assert.equal(loop.rdev, (7 << 8) | 9)
  assert.equal(loop.gid, 6)
  assert.ok((await lstat(join(root, 'dev/fifo'))).isFIFO())
})

test('filtered entries are skipped before the device check', async (t) => {
  const { base, root } = await setup(t)
  const archive = join(base, 'dev.tar')
  await writeFile(
    archive,
    await craftTar([
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: 'etc/hostname', type: 'file', content: 'box' },
    ]),
  )
  const result = await extractLayer(archive, root, { mode: 'apply', filter: (e) => e.type !== 'char' })
  assert.equal(result.entries, 1)
  assert.equal(await readFile(join(root, 'etc/hostname'), 'utf8'), 'box')
  await assert.rejects(lstat(join(root, 'dev/null')), { code: 'ENOENT' })
})
