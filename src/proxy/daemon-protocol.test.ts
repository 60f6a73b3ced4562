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

test("a backend's health check travels with it and is validated, naming the backend", () => {
  const check = {
    type: 'http',
    path: '/healthz',
    expectStatus: 200,
    port: 8081,
    interval: 1000,
    timeout: 500,
  }
  const tcp = { type: 'tcp', port: 8080, interval: 2000, timeout: 1000 }
  assert.deepEqual(
    parseBackends(
      [
        { id: 'a', host: '10.0.0.1', port: 8080, check },
        { id: 'b', host: '10.0.0.2', port: 8080, check: tcp },
        { id: 'c', host: '10.0.0.3', port: 8080 },
      ],
      'PUT /backends',
    ),
    [
      { id: 'a', host: '10.0.0.1', port: 8080, check },
      { id: 'b', host: '10.0.0.2', port: 8080, check: tcp },
      { id: 'c', host: '10.0.0.3', port: 8080 },
    ],
  )
  const bad = (c: unknown, re: RegExp) =>
    assert.throws(
      () => parseBackends([{ id: 'a', host: 'h', port: 1, check: c }], 'state.json'),
      (err: unknown) =>
        err instanceof GrailError && err.code === 'PROXY_BAD_BACKENDS' && re.test(err.message),
    )
  bad({ ...check, type: 'exec' }, /^state\.json: backends\[0\]\.check: type must be http or tcp$/)
  bad({ ...check, path: 'healthz' }, /check: path must start with \//)
  bad({ ...check, interval: 0 }, /check: interval must be 1\.\.86400000/)
  bad({ ...check, port: 70000 }, /check: port must be 1\.\.65535/)
  bad({ ...check, expectStatus: '200' }, /check: expectStatus must be 100\.\.599/)
  bad('tcp', /check: /)
})
