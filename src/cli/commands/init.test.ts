import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { schemaModeline } from './init.js'

test('the schema modeline survives a path with spaces and a "#", and is left out when the file is missing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grail schema #1 '))
  try {
    const file = join(dir, 'grail.schema.json')
    assert.equal(schemaModeline(file), '')
    await writeFile(file, '{}\n')
    const line = schemaModeline(file)
    const m = /^# yaml-language-server: \$schema=(\S+)\n$/.exec(line)
    assert.ok(m?.[1], line)
    assert.equal(fileURLToPath(m[1]), file)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
