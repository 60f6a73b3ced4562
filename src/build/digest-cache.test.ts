import assert from 'node:assert/strict'
import { mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { homeAt } from '../home.js'
import { sha256File } from '../oci/digest.js'
import { fileDigest } from './digest-cache.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

test('a remembered file digest follows the content, even when size and mtime are put back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail-fd-'))
  dirs.push(dir)
  const home = homeAt(join(dir, '.grail'))
  const file = join(dir, 'rootfs.tar')
  await writeFile(file, 'aaaa')
  const old = new Date(Date.now() - 3600_000)
  await utimes(file, old, old)
  assert.equal(await fileDigest(home, file), (await sha256File(file)).digest)
  assert.equal(await fileDigest(home, file), (await sha256File(file)).digest)
  const st = await stat(file)
  await writeFile(file, 'bbbb')
  await utimes(file, st.atime, st.mtime)
  assert.equal(await fileDigest(home, file), (await sha256File(file)).digest)
  assert.equal(await fileDigest(undefined, file), (await sha256File(file)).digest)
})
