import assert from 'node:assert/strict'
import { test } from 'node:test'
import { GrailError } from '../../errors.js'
import { challengeScopes, parseWwwAuthenticate } from './challenge.js'
import { formatReference, parseReference } from './reference.js'

const HEX = 'a'.repeat(64)

const invalidRef = (err: unknown) => err instanceof GrailError && err.code === 'REGISTRY_REF_INVALID'

test('parseReference: hosts with ports, tags, digests, both', () => {
  assert.deepEqual(parseReference('registry.example.com/team/web:1.2'), {
    registry: 'registry.example.com',
    repository: 'team/web',
    tag: '1.2',
  })
  assert.deepEqual(parseReference('localhost:5000/a'), { registry: 'localhost:5000', repository: 'a' })
  assert.deepEqual(parseReference('localhost/a/b/c'), { registry: 'localhost', repository: 'a/b/c' })
  assert.deepEqual(parseReference(`127.0.0.1:5000/x@sha256:${HEX}`), {
    registry: '127.0.0.1:5000',
    repository: 'x',
    digest: `sha256:${HEX}`,
  })
  assert.deepEqual(parseReference(`Reg.Example.COM/a.b__c-d---e/f_g:T_1.x-y@sha256:${HEX}`), {
    registry: 'reg.example.com',
    repository: 'a.b__c-d---e/f_g',
    tag: 'T_1.x-y',
    digest: `sha256:${HEX}`,
  })
  assert.deepEqual(parseReference('[::1]:5000/a:b'), { registry: '[::1]:5000', repository: 'a', tag: 'b' })
})

test('parseReference: no registry host is refused, never defaulted to Docker Hub', () => {
  for (const s of ['library/debian', 'debian', 'debian:12', 'team/web:1', `x@sha256:${HEX}`]) {
    assert.throws(
      () => parseReference(s),
      (err: unknown) => invalidRef(err) && /registry host/.test((err as GrailError).hint ?? ''),
      s,
    )
  }
})

test('parseReference: invalid repositories, tags, digests and hosts', () => {
  const bad = [
    '',
    'reg.io/',
    'reg.io/Upper',
    'reg.io/a//b',
    'reg.io/a/',
    'reg.io/-a',
    'reg.io/a-',
    'reg.io/a..b',
    'reg.io/a___b',
    'reg.io/a:',
    'reg.io/a:-x',
    'reg.io/a:.x',
    `reg.io/a:${'t'.repeat(129)}`,
    'reg.io/a@sha256:abc',
    `reg.io/a@sha256:${'A'.repeat(64)}`,
    `reg.io/a@sha512:${HEX}`,
    'reg.io/a b',
    'reg.io/a?x=1',
    'reg.io/a#x',
    'reg.io/../etc',
    'reg.io/a/../b',
    'reg.io:99999/a',
    'reg_io.com/a',
    '-reg.io/a',
    'reg.io:/a',
    `reg.io/${'a'.repeat(250)}`,
  ]
  for (const s of bad) assert.throws(() => parseReference(s), invalidRef, JSON.stringify(s))
})

test("parseReference: limits are the grammar's (a 128-character tag; a 255-character name)", () => {
  assert.equal(parseReference(`reg.io/a:${'t'.repeat(128)}`).tag?.length, 128)
  const repo = 'a'.repeat(255 - 'reg.io/'.length)
  assert.equal(parseReference(`reg.io/${repo}`).repository, repo)
  assert.throws(() => parseReference(`reg.io/${repo}a`), invalidRef)
})

test('formatReference round-trips parseReference', () => {
  for (const s of [
    'reg.io/a',
    'reg.io:443/a/b:t',
    `reg.io/a@sha256:${HEX}`,
    `localhost:5000/x/y:z@sha256:${HEX}`,
  ]) {
    assert.equal(formatReference(parseReference(s)), s)
  }
})

test('parseWwwAuthenticate: bearer with quoted values, commas inside, several scopes', () => {
  const [c, ...rest] = parseWwwAuthenticate(
    'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push repository:c:pull"',
  )
  assert.equal(rest.length, 0)
  assert.equal(c?.scheme, 'bearer')
  assert.equal(c?.params.realm, 'https://auth.example.com/token')
  assert.equal(c?.params.service, 'registry.example.com')
  assert.deepEqual(c && challengeScopes(c), ['repository:a/b:pull,push', 'repository:c:pull'])
})

test('parseWwwAuthenticate: several challenges, spaces, escapes, unquoted values, repeated params', () => {
  const cs = parseWwwAuthenticate(
    '  bearer  realm = "https://a/t?x=1,y=2" , error="invalid_token", Basic realm="Reg \\"q\\""',
  )
  assert.equal(cs.length, 2)
  assert.equal(cs[0]?.params.realm, 'https://a/t?x=1,y=2')
  assert.equal(cs[0]?.params.error, 'invalid_token')
  assert.equal(cs[1]?.scheme, 'basic')
  assert.equal(cs[1]?.params.realm, 'Reg "q"')
  const [r] = parseWwwAuthenticate(
    'Bearer realm=https://a/t,scope=repository:x:pull,scope="repository:y:pull"',
  )
  assert.equal(r?.params.realm, 'https://a/t')
  assert.deepEqual(r && challengeScopes(r), ['repository:x:pull', 'repository:y:pull'])
  // an array (several headers) and a token68
  const arr = parseWwwAuthenticate(['Basic abc==', 'Bearer realm="r"'])
  assert.deepEqual(
    arr.map((c) => c.scheme),
    ['basic', 'bearer'],
  )
  assert.equal(arr[1]?.params.realm, 'r')
  assert.deepEqual(parseWwwAuthenticate(undefined), [])
  assert.deepEqual(parseWwwAuthenticate(''), [])
  // an unterminated quote does not loop or throw
  assert.equal(parseWwwAuthenticate('Bearer realm="https://a')[0]?.params.realm, 'https://a')
})
