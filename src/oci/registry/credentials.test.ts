import assert from 'node:assert/strict'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { GrailError } from '../../errors.js'
import { redactable, resolveCredentials } from './credentials.js'

let dir: string
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grail-creds-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

const isCreds = (err: unknown) => err instanceof GrailError && err.code === 'REGISTRY_CREDENTIALS'

async function file(name: string, value: unknown, mode = 0o600): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, typeof value === 'string' ? value : JSON.stringify(value))
  await chmod(path, mode)
  return path
}

const b64 = (s: string) => Buffer.from(s).toString('base64')

test('none is anonymous; env reads the two named variables and names a missing one', async () => {
  assert.deepEqual(await resolveCredentials('r.io', { kind: 'none' }), { kind: 'anonymous' })
  const auth = { kind: 'env', username: 'REG_USER', password: 'REG_PASS' } as const
  assert.deepEqual(await resolveCredentials('r.io', auth, { REG_USER: 'u', REG_PASS: 'p:w' }), {
    kind: 'basic',
    username: 'u',
    password: 'p:w',
  })
  await assert.rejects(
    resolveCredentials('r.io', auth, { REG_USER: 'u' }),
    (err: unknown) => isCreds(err) && (err as Error).message.includes('REG_PASS'),
  )
})

test('file: docker config auths (bare host or with a scheme), username/password, identitytoken; refused when readable by others', async () => {
  const docker = await file('docker.json', {
    auths: { 'https://r.io/v1/': { auth: b64('alice:s3cr:et') }, 'other.io:5000': { identitytoken: 'tok' } },
  })
  assert.deepEqual(await resolveCredentials('r.io', { kind: 'file', path: docker }), {
    kind: 'basic',
    username: 'alice',
    password: 's3cr:et',
  })
  assert.deepEqual(await resolveCredentials('other.io:5000', { kind: 'file', path: docker }), {
    kind: 'identity-token',
    token: 'tok',
  })
  await assert.rejects(resolveCredentials('nope.io', { kind: 'file', path: docker }), isCreds)
  const plain = await file('plain.json', { username: 'bob', password: 'pw' })
  assert.deepEqual(await resolveCredentials('x.io', { kind: 'file', path: plain }), {
    kind: 'basic',
    username: 'bob',
    password: 'pw',
  })
  const open = await file('open.json', { username: 'bob', password: 'pw' }, 0o640)
  await assert.rejects(
    resolveCredentials('x.io', { kind: 'file', path: open }),
    (err: unknown) => isCreds(err) && /chmod 600/.test((err as GrailError).hint ?? ''),
  )
  const broken = await file('broken.json', '{"password": "leak-me"')
  await assert.rejects(
    resolveCredentials('x.io', { kind: 'file', path: broken }),
    (err: unknown) =>
      isCreds(err) &&
      !JSON.stringify({ m: (err as Error).message, s: (err as Error).stack }).includes('leak-me'),
  )
  await assert.rejects(resolveCredentials('x.io', { kind: 'file', path: join(dir, 'missing.json') }), isCreds)
  const badAuth = await file('bad-auth.json', { auths: { 'r.io': { auth: b64('nocolon') } } })
  await assert.rejects(resolveCredentials('r.io', { kind: 'file', path: badAuth }), isCreds)
})

test('auto: $DOCKER_CONFIG, else ~/.docker/config.json; anonymous when the host is not there', async () => {
  const home = join(dir, 'home')
  await mkdir(join(home, '.docker'), { recursive: true })
  await writeFile(
    join(home, '.docker', 'config.json'),
    JSON.stringify({ auths: { 'r.io': { auth: b64('h:1') } } }),
  )
  assert.deepEqual(await resolveCredentials('r.io', { kind: 'auto' }, {}, home), {
    kind: 'basic',
    username: 'h',
    password: '1',
  })
  assert.deepEqual(await resolveCredentials('s.io', { kind: 'auto' }, {}, home), { kind: 'anonymous' })
  const dc = join(dir, 'dc')
  await mkdir(dc)
  await writeFile(
    join(dc, 'config.json'),
    JSON.stringify({ auths: { 'http://r.io': { username: 'd', password: '2' } } }),
  )
  assert.deepEqual(await resolveCredentials('r.io', { kind: 'auto' }, { DOCKER_CONFIG: dc }, home), {
    kind: 'basic',
    username: 'd',
    password: '2',
  })
  assert.deepEqual(await resolveCredentials('r.io', { kind: 'auto' }, {}, join(dir, 'nohome')), {
    kind: 'anonymous',
  })
})

test('redactable lists the password, the base64 header form and tokens', () => {
  assert.deepEqual(redactable({ kind: 'anonymous' }), [])
  assert.deepEqual(redactable({ kind: 'basic', username: 'u', password: 'p' }), ['p', b64('u:p')])
  assert.deepEqual(redactable({ kind: 'identity-token', token: 't' }), ['t'])
})
