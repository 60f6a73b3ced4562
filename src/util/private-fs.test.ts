import assert from 'node:assert/strict'
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { makePrivateDir, tightenHomeSync, writePrivateFile } from './private-fs.js'

const mode = async (p: string) => (await stat(p)).mode & 0o7777

test('private files and dirs are owner-only under a permissive umask, and rewriting a loose file tightens it', async () => {
  const old = process.umask(0)
  const root = await mkdtemp(join(tmpdir(), 'grail-private-'))
  try {
    await makePrivateDir(join(root, 'a', 'b'))
    assert.equal(await mode(join(root, 'a', 'b')), 0o700)
    await writeFile(join(root, 'f'), 'x', { mode: 0o666 })
    await writePrivateFile(join(root, 'f'), 'y')
    assert.equal(await mode(join(root, 'f')), 0o600)
  } finally {
    process.umask(old)
    await rm(root, { recursive: true, force: true })
  }
})

test('tightening a home fixes what an older Grail left loose, skips what is missing, and never a sticky dir', async () => {
  const root = await mkdtemp(join(tmpdir(), 'grail-private-'))
  try {
    await mkdir(join(root, 'instances', 'web-1'), { recursive: true, mode: 0o755 })
    await writeFile(join(root, 'instances', 'stray-file'), '')
    for (const f of ['state.db', 'spec-cache.json', 'instances/web-1/config.json'])
      await writeFile(join(root, f), '{}', { mode: 0o644 })
    await chmod(root, 0o755)
    tightenHomeSync(root)
    assert.equal(await mode(root), 0o700)
    assert.equal(await mode(join(root, 'instances', 'web-1')), 0o700)
    assert.equal(await mode(join(root, 'instances', 'stray-file')), 0o644 & ~process.umask())
    for (const f of ['state.db', 'spec-cache.json', 'instances/web-1/config.json'])
      assert.equal(await mode(join(root, f)), 0o600, f)
    await chmod(root, 0o1777)
    tightenHomeSync(root)
    assert.equal(await mode(root), 0o1777, 'a shared sticky dir is left alone')
  } finally {
    await rm(root, { recursive: true, force: true })
  }
})
