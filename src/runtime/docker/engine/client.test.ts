// The engine client against a real dockerd (Debian docker.io, its own socket and data dir, started here):
// version negotiation, JSON requests, the engine's own error messages, and a socket nobody listens on.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type Dockerd, startDockerd } from '../../../../test/helpers/dockerd.js'
import { EngineClient, compareApi, unixTransport } from './client.js'

describe('engine client (real dockerd)', () => {
  let d: Dockerd
  let client: EngineClient
  before(async () => {
    d = await startDockerd({ name: 'engcl' })
    client = new EngineClient(unixTransport(d.host, d.socket))
  })
  after(async () => {
    await client?.close()
    await d?.stop()
  })

  test('negotiates the API version: the engine’s own, 1.41 for Debian’s Docker 20.10', async () => {
    const v = await client.version()
    assert.equal(v.kind, 'docker')
    assert.equal(v.api, '1.41')
    assert.match(v.version, /^20\.10\./)
  })

  test('a JSON request, and an engine refusal carrying the engine’s message', async () => {
    const list = await client.json<unknown[]>({ method: 'GET', path: '/containers/json', query: { all: 1 } })
    assert.deepEqual(list, [])
    await assert.rejects(
      client.json({ method: 'GET', path: '/containers/nope-not-there/json' }),
      (err: Error) => {
        assert.equal((err as { code?: string }).code, 'ENGINE_ERROR')
        assert.match(err.message, /404/)
        assert.match(err.message, /nope-not-there/)
        assert.ok(err.message.includes(d.host), err.message)
        return true
      },
    )
  })

  test('a socket nobody listens on is ENGINE_UNREACHABLE naming the endpoint', async () => {
    const c = new EngineClient(unixTransport('unix:///nonexistent/docker.sock', '/nonexistent/docker.sock'))
    await assert.rejects(c.version(), (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, 'ENGINE_UNREACHABLE')
      assert.match(err.message, /unix:\/\/\/nonexistent\/docker\.sock/)
      assert.match(err.hint ?? '', /engine running/)
      return true
    })
    await c.close()
  })
})

test('compareApi orders versions numerically', () => {
  assert.ok(compareApi('1.41', '1.9') > 0)
  assert.equal(compareApi('1.41', '1.41'), 0)
  assert.ok(compareApi('1.40', '1.41') < 0)
})
