import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runtimeConfig } from '../../container/sandbox.js'
import {
  parseRuncList,
  runcCreateCommand,
  runcExecCommand,
  runcKillCommand,
  runcListCommand,
  runcStartCommand,
} from './runc.js'

const root = ['--root', '/g/runc']

test('instance runc commands all name Grail’s own state root', () => {
  assert.deepEqual(runcCreateCommand({ runcRoot: '/g/runc', bundle: '/g/i/a', id: 'a' }), {
    file: 'runc',
    args: [...root, 'create', '--bundle', '/g/i/a', 'a'],
  })
  assert.deepEqual(runcStartCommand({ runcRoot: '/g/runc', id: 'a' }).args, [...root, 'start', 'a'])
  assert.deepEqual(runcKillCommand({ runcRoot: '/g/runc', id: 'a', signal: 'TERM' }).args, [
    ...root,
    'kill',
    'a',
    'TERM',
  ])
  assert.deepEqual(runcListCommand({ runcRoot: '/g/runc' }).args, [...root, 'list', '--format', 'json'])
})

test('exec passes argv through as separate arguments, never a shell string', () => {
  assert.deepEqual(
    runcExecCommand({ runcRoot: '/g/runc', id: 'a', argv: ['sh', '-c', 'echo $HOME; rm x'] }),
    {
      file: 'runc',
      args: [...root, 'exec', 'a', 'sh', '-c', 'echo $HOME; rm x'],
    },
  )
})

test('runc list output: null means none, entries keep status, pid and annotations', () => {
  assert.deepEqual(parseRuncList('null\n'), [])
  assert.deepEqual(parseRuncList(''), [])
  const [c] = parseRuncList(
    '[{"ociVersion":"1.0.2","id":"a","pid":42,"status":"running","bundle":"/b","rootfs":"/b/rootfs",' +
      '"created":"2026-01-01T00:00:00Z","annotations":{"dev.grail.project":"p"},"owner":"root"}]',
  )
  assert.equal(c?.status, 'running')
  assert.equal(c?.pid, 42)
  assert.equal(c?.annotations?.['dev.grail.project'], 'p')
})

test('instance configs add bind mounts and annotations; a build step config has neither', () => {
  const proc = { argv: ['/bin/true'], env: [], cwd: '/', uid: 0, gid: 0, network: true }
  const build = runtimeConfig('/r', proc)
  assert.equal(build.annotations, undefined)
  const inst = runtimeConfig('/r', proc, {
    binds: [
      { source: '/v/data', destination: '/data', readonly: false },
      { source: '/f/app.conf', destination: '/etc/app.conf', readonly: true },
    ],
    annotations: { 'dev.grail.project': 'p' },
  })
  assert.deepEqual(inst.annotations, { 'dev.grail.project': 'p' })
  const mounts = inst.mounts as Array<Record<string, unknown>>
  assert.deepEqual(mounts.slice(-2), [
    { destination: '/data', type: 'bind', source: '/v/data', options: ['rbind', 'rw'] },
    { destination: '/etc/app.conf', type: 'bind', source: '/f/app.conf', options: ['rbind', 'ro'] },
  ])
  assert.deepEqual(mounts.slice(0, -2), build.mounts)
})
