// The programs a container runs with (runc, mount), as argv data, and its runtime config: compared by
// equality, never passed through a shell.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { overlayMountCommand, runcDeleteCommand, runcRunCommand, runtimeConfig } from './sandbox.js'

test('the overlay is mounted with plain, self-contained upper dirs', () => {
  assert.deepEqual(overlayMountCommand({ lowers: ['b', 'a'], upper: '/u', work: '/w', target: '/r' }), {
    file: 'mount',
    args: [
      '-t',
      'overlay',
      'overlay',
      '-o',
      'lowerdir=b:a,upperdir=/u,workdir=/w,redirect_dir=off,index=off,metacopy=off',
      '/r',
    ],
  })
})

test('runc runs with its own state root', () => {
  assert.deepEqual(runcRunCommand({ runcRoot: '/g/runc', bundle: '/g/b', id: 'grail-b-1-ab' }).args, [
    '--root',
    '/g/runc',
    'run',
    '--bundle',
    '/g/b',
    'grail-b-1-ab',
  ])
  assert.deepEqual(runcDeleteCommand({ runcRoot: '/g/runc', id: 'x' }).args, [
    '--root',
    '/g/runc',
    'delete',
    '--force',
    'x',
  ])
})

test('a run step gets its own network namespace unless it asks for the network', () => {
  const proc = { argv: ['/bin/true'], env: [], cwd: '/', uid: 0, gid: 0 }
  const namespaces = (network: boolean) =>
    (
      runtimeConfig('/r', { ...proc, network }).linux as { namespaces: Array<{ type: string }> }
    ).namespaces.map((n) => n.type)
  assert.ok(namespaces(false).includes('network'))
  assert.ok(!namespaces(true).includes('network'))
})
