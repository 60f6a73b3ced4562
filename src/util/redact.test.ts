import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { compileGlobs } from './glob.js'
import {
  DEFAULT_REDACT_KEYS,
  makeRedactor,
  REDACTED,
  redactText,
  redactValue,
  secretIn,
  secretKeyMatcher,
} from './redact.js'

const r = makeRedactor(['s3cr3t-pa55', 'ab'])

test('known values are replaced wherever they appear; values too short to search for are left', () => {
  assert.equal(redactText('login with s3cr3t-pa55 now', r), `login with ${REDACTED} now`)
  assert.equal(redactText('xs3cr3t-pa55s3cr3t-pa55', r), `x${REDACTED}${REDACTED}`)
  assert.equal(redactText('ab cd', r), 'ab cd')
})

test('values assigned to a key matching the pattern are replaced, in any case and quoting', () => {
  assert.equal(redactText('export DB_PASSWORD=hunter2; run', r), `export DB_PASSWORD=${REDACTED}; run`)
  assert.equal(redactText('api_token: "xyz123"', r), `api_token: "${REDACTED}"`)
  assert.equal(redactText('{"Client_Secret":"q"}', r), `{"Client_Secret":"${REDACTED}"}`)
  assert.equal(redactText('GREETING=hello PORT=8080', r), 'GREETING=hello PORT=8080')
  // flags, variable references and elisions are not values
  for (const t of [
    '{value: …, secret: true}',
    'DB_PASSWORD=$DB_PASSWORD',
    'TOKEN=$TOKEN_FILE',
    'secret: false',
  ])
    assert.equal(redactText(t, r), t)
  const custom = makeRedactor([], ['*_DSN'])
  assert.equal(
    redactText('SENTRY_DSN=https://k@x DB_PASSWORD=p', custom),
    `SENTRY_DSN=${REDACTED} DB_PASSWORD=p`,
  )
})

test('an assignment to another key does not hide a secret one that follows it', () => {
  assert.equal(redactText('failed: DB_PASSWORD=hunter2', r), `failed: DB_PASSWORD=${REDACTED}`)
  assert.equal(redactText('env:API_TOKEN=abc123 next', r), `env:API_TOKEN=${REDACTED} next`)
  assert.equal(redactText('a=b=c PORT=1', r), 'a=b=c PORT=1')
  assert.equal(redactText('x: y: SECRET: z', r), `x: y: SECRET: ${REDACTED}`)
})

test('private keys are replaced whole', () => {
  const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----'
  assert.equal(redactText(`key:\n${pem}\ndone`, makeRedactor([], [])), `key:\n${REDACTED}\ndone`)
})

test('redactValue walks objects and arrays, and hides values under secret keys', () => {
  const v = redactValue(
    { argv: ['sh', '-c', 'echo s3cr3t-pa55'], env: { DB_PASSWORD: 'p', GREETING: 'hi' } },
    r,
  )
  assert.deepEqual(v, {
    argv: ['sh', '-c', `echo ${REDACTED}`],
    env: { DB_PASSWORD: REDACTED, GREETING: 'hi' },
  })
})

test('secretIn names what makes text secret', () => {
  const names = new Map([['s3cr3t-pa55', 'the value of env DB_PASSWORD']])
  assert.equal(secretIn('pw=s3cr3t-pa55', r, names), 'the value of env DB_PASSWORD')
  assert.equal(secretIn('MYSQL_PASSWORD = x', r), 'a value assigned to MYSQL_PASSWORD')
  assert.equal(secretIn('-----BEGIN PRIVATE KEY-----', r), 'a private key')
  assert.equal(secretIn('hello PORT=80', r), undefined)
})

test('the substring test for `*WORD*` key globs agrees with the glob matcher', () => {
  const viaGlobs = compileGlobs(DEFAULT_REDACT_KEYS.map((g) => g.toUpperCase()))
  const fast = secretKeyMatcher(DEFAULT_REDACT_KEYS)
  const key = fc.stringMatching(/^[A-Za-z0-9_./-]{0,24}$/)
  const withWord = fc
    .tuple(key, fc.constantFrom('password', 'Secret', 'TOKEN', 'api_key', 'PRIVATE_KEY', 'x'), key)
    .map(([a, w, b]) => `${a}${w}${b}`)
  fc.assert(
    fc.property(fc.oneof(key, withWord), (k) => fast(k) === viaGlobs(k.toUpperCase())),
    { numRuns: 5000 },
  )
  assert.equal(fast('db_password'), true)
  assert.equal(fast('PASSWORDLESS'), true)
  assert.equal(fast('PORT'), false)
  // other globs still go through the glob matcher
  assert.equal(secretKeyMatcher(['DB_*'])('db_url'), true)
  assert.equal(secretKeyMatcher(['DB_*'])('xdb_url'), false)
})
