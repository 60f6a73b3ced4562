import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { parseListen, systemdUnit } from '../cli/commands/serve.js'
import { GrailError } from '../errors.js'
import { makeRedactor } from '../util/redact.js'
import { checkListen, makeLogger } from './daemon.js'

test('the daemon log is JSON lines with every secret redacted, in fields and in messages', () => {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean))
      done()
    },
  })
  const redactor = makeRedactor(['hunter2-very-secret'])
  const log = makeLogger('info', () => redactor, sink)
  log.info(
    { env: { DB_PASSWORD: 'plain-value-1', PORT: '8080' }, note: 'uses hunter2-very-secret' },
    'deploying',
  )
  log.error('failed: API_TOKEN=abcd1234efgh and hunter2-very-secret again')
  assert.equal(lines.length, 2)
  const text = lines.join('\n')
  for (const secret of ['hunter2-very-secret', 'plain-value-1', 'abcd1234efgh'])
    assert.ok(!text.includes(secret), text)
  const first = JSON.parse(lines[0] as string) as Record<string, unknown>
  assert.equal((first.env as Record<string, string>).PORT, '8080')
  assert.equal(first.msg, 'deploying')
  assert.equal(typeof first.time, 'string')
})

test('--insecure-read is refused off loopback, and --listen must be HOST:PORT with an address', () => {
  assert.doesNotThrow(() => checkListen({ listen: { host: '127.0.0.1', port: 7070 }, insecureRead: true }))
  assert.doesNotThrow(() => checkListen({ listen: { host: '::1', port: 7070 }, insecureRead: true }))
  assert.doesNotThrow(() => checkListen({ listen: { host: '0.0.0.0', port: 7070 }, insecureRead: false }))
  for (const host of ['0.0.0.0', '10.1.2.3', '::']) {
    assert.throws(
      () => checkListen({ listen: { host, port: 7070 }, insecureRead: true }),
      (e: unknown) => e instanceof GrailError && e.code === 'BAD_LISTEN' && e.message.includes(host),
    )
  }
  assert.throws(
    () => checkListen({ listen: { host: 'example.com', port: 1 }, insecureRead: false }),
    /not an IP/,
  )
  assert.deepEqual(parseListen('127.0.0.1:0'), { host: '127.0.0.1', port: 0 })
  assert.deepEqual(parseListen('[::1]:7070'), { host: '::1', port: 7070 })
  for (const bad of ['7070', '127.0.0.1', '127.0.0.1:99999', ':80', 'a:b:c:1'])
    assert.throws(
      () => parseListen(bad),
      (e: unknown) => e instanceof GrailError && e.code === 'BAD_LISTEN',
    )
})

test('the systemd unit runs the same command, keeps instances on stop, and verifies', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grail unit '))
  try {
    const unit = systemdUnit({
      dir,
      project: 'hello',
      argv: ['prod', '--listen', '127.0.0.1:7070', '--interval', '30s'],
      grail: '/usr/local/bin/grail',
    })
    assert.match(
      unit,
      new RegExp(
        `^ExecStart=/usr/local/bin/grail -C "${dir}" serve prod --listen 127.0.0.1:7070 --interval 30s$`,
        'm',
      ),
    )
    assert.match(unit, /^KillMode=process$/m)
    assert.match(unit, /^Restart=always$/m)
    assert.match(unit, /^UMask=0077$/m)
    const analyze = spawnSync('systemd-analyze', ['--version'])
    if (analyze.status !== 0) return
    const file = join(dir, 'grail-hello.service')
    writeFileSync(file, unit.replace('/usr/local/bin/grail', process.execPath))
    const res = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' })
    assert.ok(!/grail-hello.service:\d+:/.test(res.stderr), res.stderr)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
