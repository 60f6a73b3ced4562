import assert from 'node:assert/strict'
import { mkdir, mkdtemp, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { removeDir } from '../../test/helpers/project.js'
import { openDb } from './db.js'
import { appendEvent, listEvents } from './events.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await removeDir(d)
})

async function home(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'grail-db-'))
  dirs.push(dir)
  return dir
}

test('a new home gets a new state; an existing one opens as it was', async () => {
  const file = join(await home(), 'state.db')
  const db = openDb(file)
  appendEvent(db, 'test.one', 'x')
  db.close()
  const again = openDb(file)
  assert.deepEqual(
    listEvents(again).map((e) => e.kind),
    ['test.one'],
  )
  again.close()
})

test('a truncated state is refused as damaged, naming the file', async () => {
  const file = join(await home(), 'state.db')
  const db = openDb(file)
  for (let i = 0; i < 500; i++) appendEvent(db, 'test.many', 'x', { i, pad: 'p'.repeat(200) })
  db.close()
  await truncate(file, Math.floor((await stat(file)).size / 2))
  assert.throws(
    () => openDb(file),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'STATE_DAMAGED')
      assert.ok(err.message.startsWith(`${file} is damaged`), err.message)
      return true
    },
  )
})

test('a missing or empty state beside instances and images is refused; startOver opens it anyway', async () => {
  const dir = await home()
  const file = join(dir, 'state.db')
  await mkdir(join(dir, 'instances', 'web-r1-abcdef'), { recursive: true })
  await mkdir(join(dir, 'oci'), { recursive: true })
  await writeFile(join(dir, 'oci', 'index.json'), JSON.stringify({ manifests: [{}, {}] }))
  assert.throws(
    () => openDb(file),
    (err: Error & { code?: string; details?: string[] }) => {
      assert.equal(err.code, 'STATE_MISSING')
      assert.match(err.message, /state\.db is missing, but this project has run before/)
      assert.deepEqual(
        err.details?.map((d) => d.replace(/ in .*/, '')),
        ['1 instance bundle', '2 images'],
      )
      return true
    },
  )
  await assert.rejects(stat(file), { code: 'ENOENT' })
  await writeFile(file, '')
  assert.throws(() => openDb(file), /is empty \(0 bytes\)/)
  openDb(file, { startOver: true }).close()
  openDb(file).close()
})

test('a state.db that is a directory is a user error naming it', async () => {
  const file = join(await home(), 'state.db')
  await mkdir(file)
  assert.throws(
    () => openDb(file),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'STATE_UNREADABLE')
      assert.ok(err.message.startsWith(`cannot open ${file}`), err.message)
      return true
    },
  )
})
