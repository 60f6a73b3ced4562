// Grail against Debian's docker-registry behind a bearer-token issuer (`auth: token`, TLS with a CA this
// test makes; the issuer is test/helpers/registry.ts's, in this process): push, a fresh clone that deploys
// the locked digest without building, pull by digest elsewhere, wrong credentials, token caching, and no
// credential (password, base64 user:pass, any token the issuer handed out) anywhere Grail writes or prints
// nor in the registry's storage.
import assert from 'node:assert/strict'
import { cp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Lock } from '../../src/lifecycle/lock.js'
import { busyboxProject, type CliResult, grail, parseJson, removeDir, tearDown } from '../helpers/project.js'
import {
  filesContaining,
  registryGet,
  registryRequest,
  startRegistry,
  type TestRegistry,
  type TokenIssuer,
} from '../helpers/registry.js'
import { httpdImages } from '../helpers/specs.js'
import { startTamperProxy } from '../helpers/tamper-proxy.js'

const PROJECT = 'tokentest'

const spec = (url: string) => `project: ${PROJECT}
registry:
  url: ${url}
  ca: ./ca.pem
  auth: { env: { username: REG_USER, password: REG_PASS } }
${httpdImages()}services:
  web:
    image: web
    replicas: 2
    port: 8080
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
`

interface Status {
  instances: Array<{ image: string; digest: string; health: string }>
}

describe('registry behind a bearer-token issuer (TLS, Debian docker-registry, local provider)', () => {
  let reg: TestRegistry
  let issuer: TokenIssuer
  let dir: string
  let digest: string
  const clones: string[] = []
  /** every byte Grail printed in this file: no credential may be in any of it */
  const outputs: string[] = []
  let env: Record<string, string>
  const run = async (
    args: string[],
    cwd = dir,
    extraEnv: Record<string, string> = {},
  ): Promise<CliResult> => {
    const res = await grail(args, { cwd, env: { ...env, ...extraEnv } })
    outputs.push(res.stdout, res.stderr)
    return res
  }
  const lock = async (d = dir) => JSON.parse(await readFile(join(d, 'grail.lock'), 'utf8')) as Lock

  before(async () => {
    reg = await startRegistry({ tls: true, auth: 'token' })
    issuer = reg.issuer as TokenIssuer
    assert.ok(issuer, 'auth token starts an issuer')
    env = { REG_USER: reg.username, REG_PASS: reg.password }
    dir = await busyboxProject({ 'grail.yaml': spec(reg.url), 'site/index.html': 'token v1\n' })
    await cp(reg.caFile, join(dir, 'ca.pem'))
    const built = await run(['build'])
    assert.equal(built.code, 0, built.stderr)
    digest = (await lock()).images.web?.digest as string
  })
  after(async () => {
    for (const c of clones) await tearDown(c).catch(() => removeDir(c))
    if (dir) await tearDown(dir).catch(() => removeDir(dir))
    await reg?.stop()
  })

  test('the registry refuses anonymous requests: the token flow is really in the way', async () => {
    const anon = await registryRequest(reg, `/v2/${PROJECT}/web/tags/list`, { creds: null })
    assert.equal(anon.status, 401)
    const wrong = await registryRequest(reg, '/v2/', { creds: { username: reg.username, password: 'nope' } })
    assert.equal(wrong.status, 401)
    const right = await registryRequest(reg, '/v2/')
    assert.equal(right.status, 200)
  })

  test('grail push through the token flow; tokens are cached: far fewer issuer than registry requests', async () => {
    // a counting proxy in front of the registry: every registry request of the push goes through it
    const proxy = await startTamperProxy(reg, { tls: true })
    try {
      await writeFile(join(dir, 'grail.yaml'), spec(proxy.url))
      const before = issuer.requests
      const tokensBefore = issuer.tokens.length
      const res = await run(['--json', 'push'])
      const out = parseJson<{ pushed: Array<{ digest: string; uploaded: number; skipped: number }> }>(res)
      assert.equal(out.pushed[0]?.digest, digest)
      assert.ok((out.pushed[0]?.uploaded ?? 0) >= 2, JSON.stringify(out))
      const issuerRequests = issuer.requests - before
      const registryRequests = proxy.requests
      const asked = issuer.tokens.slice(tokensBefore).map((t) => tokenScopes(t))
      const why = `${issuerRequests} issuer requests for ${registryRequests} registry requests; tokens for ${JSON.stringify(asked)}`
      assert.ok(issuerRequests > 0, 'the issuer was asked for a token')
      // one push of one image to one repository needs one scope (push,pull), so a token or two (a pull
      // scope first is fine); a client that asks for a token per request would make as many issuer
      // requests as registry requests
      assert.ok(issuerRequests <= 3, why)
      assert.ok(registryRequests >= 4 * issuerRequests, why)
    } finally {
      await writeFile(join(dir, 'grail.yaml'), spec(reg.url))
      await proxy.stop()
    }
    const head = await registryGet(reg, `/v2/${PROJECT}/web/manifests/v1`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    })
    assert.equal(head.status, 200)
    assert.equal(head.headers['docker-content-digest'], digest)
    // straight to the registry now: a second push uploads nothing
    const again = parseJson<{ pushed: Array<{ uploaded: number; skipped: number }> }>(
      await run(['--json', 'push']),
    )
    assert.equal(again.pushed[0]?.uploaded, 0)
    assert.ok((again.pushed[0]?.skipped ?? 0) >= 2)
  })

  test('a fresh clone with an empty .grail/ deploys exactly the locked digest through the token flow, building nothing', async () => {
    const clone = await busyboxProject({})
    clones.push(clone)
    for (const f of ['grail.yaml', 'grail.lock', 'ca.pem', 'site'])
      await cp(join(dir, f), join(clone, f), { recursive: true })
    const issued = issuer.issued
    const asked = issuer.requests
    const res = await run(['apply', '--locked'], clone)
    assert.equal(res.code, 0, res.stderr + res.stdout)
    assert.ok(issuer.issued > issued, 'the pull took a token')
    // one repository, one scope (pull): one token for the manifest and every blob
    assert.ok(issuer.requests - asked <= 2, `${issuer.requests - asked} issuer requests for one pull`)
    const s = parseJson<Status>(await run(['--json', 'status'], clone))
    assert.equal(s.instances.length, 2)
    assert.ok(
      s.instances.every((i) => i.digest === digest && i.health === 'healthy'),
      JSON.stringify(s),
    )
    const events = parseJson<Array<{ kind: string }>>(await run(['--json', 'events'], clone))
    assert.ok(!events.some((e) => e.kind === 'image.built'), 'nothing was built')
    assert.ok(events.some((e) => e.kind === 'image.pulled'))
  })

  test('grail pull HOST/P/web@DIGEST in another project', async () => {
    const other = await busyboxProject({ 'grail.yaml': spec(reg.url), 'site/index.html': 'other\n' })
    clones.push(other)
    await cp(reg.caFile, join(other, 'ca.pem'))
    const pulled = parseJson<{ record: { name: string; digest: string }; created: boolean }>(
      await run(['--json', 'pull', `${reg.host}/${PROJECT}/web@${digest}`], other),
    )
    assert.equal(pulled.record.name, 'web')
    assert.equal(pulled.record.digest, digest)
    assert.equal(pulled.created, true)
  })

  test('wrong credentials: exit 1, an error naming the registry, the wrong password not printed', async () => {
    const wrong = 'wrong-password-0a1b2c3d4e5f'
    const fresh = await busyboxProject({ 'grail.yaml': spec(reg.url), 'site/index.html': 'x\n' })
    clones.push(fresh)
    await cp(reg.caFile, join(fresh, 'ca.pem'))
    await cp(join(dir, 'grail.lock'), join(fresh, 'grail.lock'))
    const issued = issuer.issued
    for (const [args, cwd] of [
      [['push'], dir],
      [['pull', `${reg.host}/${PROJECT}/web@${digest}`], fresh],
      [['apply', '--locked'], fresh],
    ] as const) {
      const res = await run([...args], cwd, { REG_PASS: wrong })
      const all = res.stdout + res.stderr
      assert.equal(res.code, 1, `${args.join(' ')}: ${all}`)
      assert.ok(res.stderr.includes(reg.host), `${args.join(' ')} names the registry: ${res.stderr}`)
      assert.match(res.stderr, /REGISTRY_AUTH|refused|credentials/i, args.join(' '))
      assert.ok(!all.includes(wrong), `${args.join(' ')} printed the wrong password`)
      assert.ok(!all.includes(Buffer.from(`${reg.username}:${wrong}`).toString('base64')))
    }
    assert.equal(issuer.issued, issued, 'no token for wrong credentials')
    // a wrong user name, and no credentials at all (auth: none): refused as well, naming the registry
    const user = await run(['pull', `${reg.host}/${PROJECT}/web@${digest}`], fresh, { REG_USER: 'nobody' })
    assert.equal(user.code, 1, user.stdout + user.stderr)
    assert.ok(user.stderr.includes(reg.host), user.stderr)
    await writeFile(
      join(fresh, 'grail.yaml'),
      spec(reg.url).replace('auth: { env: { username: REG_USER, password: REG_PASS } }', 'auth: none'),
    )
    const anon = await run(['pull', `${reg.host}/${PROJECT}/web@${digest}`], fresh)
    assert.equal(anon.code, 1, anon.stdout + anon.stderr)
    assert.ok(anon.stderr.includes(reg.host), anon.stderr)
    assert.match(anon.stderr, /no credentials were given/)
    assert.equal(issuer.issued, issued, 'no token for a wrong user or for nobody')
    // the wrong pull stored nothing
    const images = parseJson<unknown[]>(await run(['--json', 'images'], fresh))
    assert.deepEqual(images, [])
  })

  test('no credential in .grail/, the event log, any output or the registry storage', async () => {
    const tokens = [...issuer.tokens]
    assert.ok(tokens.length > 0 && issuer.issued === tokens.length)
    const secrets: Array<[string, string]> = [
      ['password', reg.password],
      ['base64 user:password', Buffer.from(`${reg.username}:${reg.password}`).toString('base64')],
      ...tokens.map((t, i): [string, string] => [`token #${i}`, t]),
      // a token's signature alone is as good as the token for telling it leaked
      ...tokens.map((t, i): [string, string] => [`signature of token #${i}`, t.split('.')[2] as string]),
    ]
    for (const d of [dir, ...clones]) {
      const events = await run(['--json', 'events'], d)
      assert.equal(events.code, 0, events.stderr)
      for (const [what, s] of secrets) assert.ok(!events.stdout.includes(s), `${what} in events of ${d}`)
    }
    for (const [what, s] of secrets) {
      assert.ok(!outputs.some((o) => o.includes(s)), `${what} printed by a command`)
      for (const d of [dir, ...clones]) {
        assert.deepEqual(await filesContaining(join(d, '.grail'), s), [], `${what} in ${d}/.grail`)
      }
      assert.deepEqual(await filesContaining(reg.storageDir, s), [], `${what} in the registry's storage`)
    }
  })
})

/** What a JWT the issuer made grants: `type:name:actions` per access entry. */
function tokenScopes(token: string): string[] {
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
    access: Array<{ type: string; name: string; actions: string[] }>
  }
  return claims.access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`)
}
