import assert from 'node:assert/strict'
import { mkdir, mkdtemp, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
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

test('a command opening a new state while another holds it waits and gets it in WAL mode (not "database is locked")', async () => {
  const { spawn } = await import('node:child_process')
  const Database = (await import('better-sqlite3')).default
  const file = join(await home(), 'state.db')
  // another command has just created the file and is writing to it, still in rollback-journal mode
  const holder = new Database(file)
  holder.exec('CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)')
  const db = new URL('./db.ts', import.meta.url).href
  const script = `import { openDb } from ${JSON.stringify(db)}; openDb(${JSON.stringify(file)}, { startOver: true }).close(); console.log('opened')`
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script])
  let output = ''
  child.stdout.on('data', (b: Buffer) => {
    output += b.toString()
  })
  child.stderr.on('data', (b: Buffer) => {
    output += b.toString()
  })
  // the other command finishes once this one is surely waiting for the lock
  const started = Date.now()
  while (!existsSync(`${file}-journal`) || Date.now() - started < 1500) await sleep(50)
  await sleep(500)
  holder.exec('COMMIT')
  holder.close()
  const code = await new Promise<number | null>((done) => child.on('close', done))
  assert.equal(code, 0, output)
  assert.match(output, /opened/)
  const check = openDb(file)
  assert.equal(check.pragma('journal_mode', { simple: true }), 'wal')
  check.close()
})

test('a new state another connection keeps locked is STATE_BUSY naming the file, after the busy timeout', async () => {
  const Database = (await import('better-sqlite3')).default
  const file = join(await home(), 'state.db')
  const holder = new Database(file)
  holder.exec('CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)')
  try {
    assert.throws(
      () => openDb(file, { startOver: true }),
      (err: Error & { code?: string }) => err.code === 'STATE_BUSY' && err.message.includes(file),
    )
  } finally {
    holder.exec('ROLLBACK')
    holder.close()
  }
})
