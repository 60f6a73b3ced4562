// Classification of file drift, with a provider stub that reports given changes (the e2e drift tests run
// the same code against real runc instances) and an image manifest written to the home's cache.
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { homeAt } from '../home.js'
import type { Digest } from '../oci/digest.js'
import type { OciStore } from '../oci/store.js'
import type { FileChange, RuntimeProvider } from '../runtime/types.js'
import type { HotfixRecord } from '../state/index.js'
import { fileDrift, hotfixChangeOf, sameChange } from './files.js'

const IMAGE = `sha256:${'ab'.repeat(32)}` as Digest
let root: string

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'grail-drift-unit-'))
  const dir = join(root, 'file-manifests', 'images')
  await mkdir(dir, { recursive: true })
  const entry = (path: string, sha256: string) => ({
    path,
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: 3,
    sha256,
  })
  await writeFile(
    join(dir, `${'ab'.repeat(32)}.json`),
    JSON.stringify({
      format: 1,
      entries: [entry('/etc/app.conf', 'aaa'), entry('/srv/index.html', 'bbb'), entry('/tmp/x', 'ccc')],
    }),
  )
})
after(() => rm(root, { recursive: true, force: true }))

const current = (sha256: string, mode = 0o644) => ({
  type: 'file' as const,
  mode,
  uid: 0,
  gid: 0,
  size: 3,
  sha256,
})

function stubProvider(changes: FileChange[]): RuntimeProvider {
  return { name: 'stub', diff: async () => changes } as unknown as RuntimeProvider
}

const hotfix = (
  changes: FileChange[],
  expiresInMs: number,
  status: HotfixRecord['status'] = 'recorded',
): HotfixRecord => ({
  id: 7,
  instance: 'web-1',
  environment: 'local',
  service: 'web',
  actor: 'ops',
  reason: 'test',
  command: ['true'],
  status,
  exitCode: 0,
  changes: changes.map(hotfixChangeOf),
  createdAt: new Date(0).toISOString(),
  expiresAt: new Date(1_000_000 + expiresInMs).toISOString(),
})

async function classify(changes: FileChange[], opts: { ignore?: string[]; hotfixes?: HotfixRecord[] } = {}) {
  return fileDrift({
    home: homeAt(root),
    store: {} as OciStore,
    provider: stubProvider(changes),
    instance: 'web-1',
    image: IMAGE,
    ignore: opts.ignore ?? [],
    hotfixes: opts.hotfixes ?? [],
    now: 1_000_000,
    withDiffs: false,
  })
}

test('a copied-up file with the same content, mode and owner is touched, not drift; a real change names what changed', async () => {
  const res = await classify([
    { kind: 'C', path: '/etc/app.conf', current: current('aaa') },
    { kind: 'C', path: '/srv/index.html', current: current('zzz', 0o600) },
  ])
  assert.equal(res.touched, 1)
  assert.deepEqual(
    res.files.map((f) => [f.kind, f.path, f.what, f.class]),
    [['C', '/srv/index.html', ['content', 'mode'], 'unexplained']],
  )
})

test('the image manifest decides A or C; deletions are D', async () => {
  const res = await classify([
    { kind: 'A', path: '/etc/app.conf', current: current('new') },
    { kind: 'C', path: '/srv/new.html', current: current('new') },
    { kind: 'D', path: '/srv/index.html' },
  ])
  assert.deepEqual(
    res.files.map((f) => [f.kind, f.path]),
    [
      ['C', '/etc/app.conf'],
      ['A', '/srv/new.html'],
      ['D', '/srv/index.html'],
    ],
  )
})

test('paths under an ignore glob are expected', async () => {
  const res = await classify(
    [
      { kind: 'C', path: '/tmp/x', current: current('zzz') },
      { kind: 'A', path: '/tmp/cache/y', current: current('zzz') },
      { kind: 'A', path: '/srv/tmp/z', current: current('zzz') },
    ],
    { ignore: ['/tmp/**'] },
  )
  assert.deepEqual(
    res.files.map((f) => [f.path, f.class]),
    [
      ['/tmp/x', 'expected'],
      ['/tmp/cache/y', 'expected'],
      ['/srv/tmp/z', 'unexplained'],
    ],
  )
})

test('ignore globs take braces, classes and names at any depth, dotfiles included', async () => {
  const res = await classify(
    [
      { kind: 'A', path: '/var/log/app.log', current: current('zzz') },
      { kind: 'A', path: '/var/log/app.tmp', current: current('zzz') },
      { kind: 'A', path: '/var/log/app.txt', current: current('zzz') },
      { kind: 'A', path: '/run/app1.pid', current: current('zzz') },
      { kind: 'A', path: '/home/u/.bash_history', current: current('zzz') },
    ],
    { ignore: ['/var/log/*.{log,tmp}', '/run/app[0-9].pid', '.bash_history'] },
  )
  assert.deepEqual(
    res.files.map((f) => [f.path, f.class]),
    [
      ['/var/log/app.log', 'expected'],
      ['/var/log/app.tmp', 'expected'],
      ['/var/log/app.txt', 'unexplained'],
      ['/run/app1.pid', 'expected'],
      ['/home/u/.bash_history', 'expected'],
    ],
  )
})

test('a live hotfix excuses exactly the change it recorded: not a later edit of the same file, not after its TTL', async () => {
  const fixed: FileChange = { kind: 'C', path: '/etc/app.conf', current: current('fix') }
  const live = hotfix([fixed], 60_000)
  assert.deepEqual(
    (await classify([fixed], { hotfixes: [live] })).files.map((f) => [f.class, f.hotfix]),
    [['excused', 7]],
  )
  const edited: FileChange = { kind: 'C', path: '/etc/app.conf', current: current('fix2') }
  assert.equal((await classify([edited], { hotfixes: [live] })).files[0]?.class, 'unexplained')
  assert.equal((await classify([fixed], { hotfixes: [hotfix([fixed], -1)] })).files[0]?.class, 'unexplained')
  assert.equal(
    (await classify([fixed], { hotfixes: [hotfix([fixed], 60_000, 'running')] })).files[0]?.class,
    'unexplained',
  )
})

test('sameChange compares kind, path and the resulting file; a hotfix keeps the metadata, never content', () => {
  const c: FileChange = { kind: 'C', path: '/a', current: current('x') }
  const h = hotfixChangeOf(c)
  assert.deepEqual(h, { kind: 'C', path: '/a', ...current('x') })
  assert.ok(sameChange(c, h))
  assert.ok(!sameChange({ ...c, kind: 'A' }, h))
  assert.ok(sameChange({ kind: 'D', path: '/a' }, { kind: 'D', path: '/a' }))
})
