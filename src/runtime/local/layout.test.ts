import assert from 'node:assert/strict'
import { test } from 'node:test'
import { homeAt } from '../../home.js'
import type { InstanceSpec } from '../types.js'
import { checkSpec, instancePaths, instanceRelPath, isInstanceId, volumePath } from './layout.js'

const home = homeAt('/g')

test('instance ids: lower-case, digits and dashes, at most 63, never a build sandbox id', () => {
  for (const ok of ['a', 'web-1', '0abc', 'x'.repeat(63)]) assert.ok(isInstanceId(ok), ok)
  for (const bad of ['', '-a', 'A', 'a_b', 'a/b', '..', 'a b', 'x'.repeat(64), 'grail-b-1-abcd', 'a\n'])
    assert.ok(!isInstanceId(bad), bad)
})

test('an invalid id never reaches a path', () => {
  assert.throws(() => instancePaths(home, '../etc'), { code: 'BAD_INSTANCE_ID' })
  assert.equal(instancePaths(home, 'web-1').upper, '/g/instances/web-1/upper')
})

test('volumes live under volumes/<project>/<environment>/<name>; names are single components', () => {
  assert.equal(volumePath(home, 'demo', 'prod', 'data'), '/g/volumes/demo/prod/data')
  assert.throws(() => volumePath(home, 'demo', '..', 'data'), { code: 'BAD_NAME' })
  assert.throws(() => volumePath(home, 'demo', 'prod', 'a/b'), { code: 'BAD_NAME' })
})

test('paths inside an instance must be absolute and stay below /', () => {
  assert.equal(instanceRelPath('/etc//app.conf', 'file'), 'etc/app.conf')
  for (const bad of ['etc/x', '/', '/a/../b', '/a\0b']) {
    assert.throws(() => instanceRelPath(bad, 'file'), { code: 'BAD_PATH' }, bad)
  }
})

test('a spec is checked whole before anything is written', () => {
  const spec: InstanceSpec = {
    id: 'web-1',
    labels: { project: 'demo', environment: 'prod', service: 'web', release: 1 },
    image: { name: 'app', version: 1, digest: `sha256:${'0'.repeat(64)}` },
    env: {},
    files: { '/etc/app.conf': 'x' },
    volumes: [{ name: 'data', path: '/data' }],
  }
  checkSpec(spec)
  assert.throws(() => checkSpec({ ...spec, files: { 'etc/app.conf': 'x' } }), { code: 'BAD_PATH' })
  assert.throws(() => checkSpec({ ...spec, volumes: [{ name: '../x', path: '/d' }] }), { code: 'BAD_NAME' })
  assert.throws(() => checkSpec({ ...spec, labels: { ...spec.labels, project: 'a/b' } }), {
    code: 'BAD_NAME',
  })
})
