import assert from 'node:assert/strict'
import { test } from 'node:test'
import { GrailError } from '../errors.js'
import { daemonArgv, parseBackends, parseDaemonArgs, parseListen } from './daemon-protocol.js'

test('daemon arguments round-trip through argv', () => {
  const args = {
    control: '/tmp/c.sock',
    listenHost: '::1',
    listenPort: 8080,
    mode: 'tcp' as const,
    state: '/x/state.json',
    log: '/x/proxy.log',
    drainTimeoutMs: 1500,
    inheritListen: false,
  }
  const argv = daemonArgv(args)
  assert.ok(argv.includes('[::1]:8080'))
  assert.deepEqual(parseDaemonArgs(argv), args)
  const restarted = { ...args, inheritListen: true }
  assert.deepEqual(parseDaemonArgs(daemonArgv(restarted)), restarted)
})

test('bad daemon arguments are usage errors naming the flag', () => {
  const usage = (argv: string[], re: RegExp) =>
    assert.throws(
      () => parseDaemonArgs(argv),
      (err: unknown) =>
        err instanceof GrailError && err.code === 'PROXY_DAEMON_USAGE' && re.test(err.message),
    )
  const base = ['--control', 's', '--listen', '127.0.0.1:80', '--mode', 'http', '--state', 'f']
  usage(base.slice(2), /--control is required/)
  usage([...base, '--mode'], /expected --flag value/)
  usage([...base, '--colour', 'red'], /unknown flag --colour/)
  usage(
    base.map((a) => (a === 'http' ? 'udp' : a)),
    /--mode must be http or tcp/,
  )
  usage([...base, '--drain-timeout', '-1'], /--drain-timeout/)
  assert.throws(() => parseListen('127.0.0.1:0'), /host:port/)
  assert.throws(() => parseListen('127.0.0.1'), /host:port/)
  assert.deepEqual(parseListen('localhost:65535'), { host: 'localhost', port: 65535 })
})

test('a backend list needs ids, hosts, valid ports, and unique ids', () => {
  const ok = [{ id: 'a', host: '127.0.0.1', port: 1, extra: true }]
  assert.deepEqual(parseBackends(ok, 'w'), [{ id: 'a', host: '127.0.0.1', port: 1 }])
  const bad = (value: unknown, re: RegExp) => assert.throws(() => parseBackends(value, 'PUT /backends'), re)
  bad({}, /must be an array/)
  bad([{ id: '', host: 'h', port: 1 }], /backends\[0\] needs a non-empty id/)
  bad([{ id: 'a', host: 'h', port: 70000 }], /port must be 1\.\.65535/)
  bad(
    [
      { id: 'a', host: 'h', port: 1 },
      { id: 'a', host: 'h', port: 2 },
    ],
    /"a" appears twice/,
  )
})
