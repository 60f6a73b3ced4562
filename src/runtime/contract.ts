/**
 * The contract every RuntimeProvider passes against its real engine (runc, dockerd, podman, swarm): one
 * `describe` per provider, the same cases, in order, on one set of instances. The image under test must
 * be the contract image described by `CONTRACT_IMAGE` (test/helpers/contract-image.ts builds it). What an
 * engine may report late (an instance in list after create, its state after stop, its absence after
 * destroy) is asserted with `eventually`, so engines that are eventually consistent pass unchanged. A
 * case a provider cannot run is skipped with `t.skip()`, so the run reports it as skipped; an early
 * return would report it as passed.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import type { ImageRef, InstanceHandle, InstanceSpec, RuntimeProvider } from './types.js'

/**
 * What the image a provider is tested with must hold: busybox (`sh`, `cat`, `rm`, `mkdir`, `ln`,
 * `httpd`), a command that prints `LOG_LINE` followed by `$PORT` on stdout and then runs
 * `httpd -f -p $PORT -h /srv/www`, `/srv/www/index.html` with `PAGE` as content, and the files
 * `/srv/data/change-me` and `/srv/data/delete-me`. `/etc/grail` and `/var/lib` must not exist in it.
 */
export const CONTRACT_IMAGE = {
  PAGE: 'grail contract page\n',
  LOG_LINE: 'contract-app listening on ',
  /** a `run` step that makes the image's data files */
  RUN: 'mkdir -p /srv/www /srv/data && echo a > /srv/data/change-me && echo b > /srv/data/delete-me',
  CMD: ['/bin/sh', '-c', 'echo "contract-app listening on $PORT"; exec httpd -f -v -p "$PORT" -h /srv/www'],
} as const

export interface ContractSetup {
  provider: RuntimeProvider
  image: ImageRef
  /**
   * Leaves `spec` as a create killed halfway would: recorded but never started (and, for 'mount', with
   * its filesystem prepared); 'unrecorded': with its filesystem prepared but nothing left that tells
   * whose it is (what `reconcile` is for). Providers whose create is atomic leave it out and skip those
   * cases.
   */
  crash?: (spec: InstanceSpec, point: 'record' | 'mount' | 'unrecorded') => Promise<void>
  /**
   * Creates and starts `spec` behind the provider's back: through the engine directly, or through another
   * provider object in another process, as a second Grail or an operator would. `provider` must find it.
   */
  createElsewhere(spec: InstanceSpec): Promise<void>
  /**
   * Runs `fn` while what `prepareImage` prepares the image from (the local store's layer blobs, the
   * registry) is out of reach, then puts it back: a prepared image must not need it again. Providers that
   * cannot take it away leave it out and skip that case.
   */
  withoutImageSource?: (fn: () => Promise<void>) => Promise<void>
  cleanup(): Promise<void>
}

/**
 * Runs `fn` until it resolves, retrying every `intervalMs` while it throws, and rethrows its last failure
 * once `timeoutMs` have passed: for what an eventually consistent engine reports a moment late.
 */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 100 } = opts
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return await fn()
    } catch (err) {
      if (Date.now() + intervalMs > deadline) throw err
      await sleep(intervalMs)
    }
  }
}

/** GET http://host:port/path until it answers (an instance needs a moment to listen) or `ms` pass. */
async function fetchText(url: string, ms = 5000): Promise<string> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      const res = await fetch(url)
      return await res.text()
    } catch (err) {
      if (Date.now() > deadline) throw err
      await sleep(50)
    }
  }
}

/** Registers the contract cases for one provider. */
export function runProviderContract(name: string, setup: () => Promise<ContractSetup>): void {
  describe(`RuntimeProvider contract: ${name}`, () => {
    const run = randomBytes(3).toString('hex')
    const project = `contract-${run}`
    let s: ContractSetup
    let p: RuntimeProvider
    const spec = (n: number, release = 1): InstanceSpec => ({
      id: `ct-${run}-${n}`,
      labels: { project, environment: 'test', service: 'web', release },
      image: s.image,
      env: { GREETING: 'hello world', RELEASE: String(release) },
      files: { '/etc/grail/app.conf': 'mode=contract\n' },
      volumes: [{ name: 'data', path: '/var/lib/data' }],
      port: 8080,
    })
    const handle = async (n: number, release = 1): Promise<InstanceHandle> => {
      const h = await p.create(spec(n, release))
      assert.equal(h.id, spec(n).id)
      return h
    }
    let first: InstanceHandle

    before(async () => {
      s = await setup()
      p = s.provider
      await p.prepareImage(s.image)
    })
    after(async () => {
      if (!s) return
      for (const o of await p.list({ project })) await p.destroy({ id: o.id, provider: p.name })
      await s.cleanup()
    })

    test('prepareImage again, and twice at once, succeeds and the image still starts instances', async () => {
      await p.prepareImage(s.image)
      await Promise.all([p.prepareImage(s.image), p.prepareImage(s.image)])
      const h = await handle(7, 7)
      await p.start(h)
      const ep = await p.endpoint(h, 8080)
      assert.equal(await fetchText(`http://${ep.host}:${ep.port}/index.html`), CONTRACT_IMAGE.PAGE)
      await p.destroy(h)
    })

    test('a second prepareImage takes the fast path: it does not go back to the image source', async (t) => {
      if (!s.withoutImageSource) return t.skip('the provider cannot take its image source away')
      await s.withoutImageSource(() => p.prepareImage(s.image))
    })

    test('create + start: inspect reports it running with the image digest and env', async () => {
      first = await handle(1)
      assert.equal((await p.inspect(first)).state, 'created')
      await p.start(first)
      const o = await p.inspect(first)
      assert.equal(o.state, 'running')
      assert.equal(o.imageDigest, s.image.digest)
      assert.equal(o.env.GREETING, 'hello world')
      assert.match(o.env.PORT ?? '', /^\d+$/)
      assert.ok(o.mounts.some((m) => m.destination === '/var/lib/data'))
    })

    test('the endpoint serves HTTP from the image', async () => {
      const ep = await p.endpoint(first, 8080)
      assert.equal(await fetchText(`http://${ep.host}:${ep.port}/index.html`), CONTRACT_IMAGE.PAGE)
    })

    test('list(scope) finds it with its labels, and only in its scope', async () => {
      await eventually(async () => {
        const found = (await p.list({ project })).find((o) => o.id === first.id)
        assert.deepEqual(found?.labels, spec(1).labels)
        assert.equal(found?.state, 'running')
      })
      assert.ok(
        (await p.list({ project, environment: 'test', service: 'web' })).some((o) => o.id === first.id),
      )
      assert.ok(!(await p.list({ project, service: 'other' })).some((o) => o.id === first.id))
      assert.ok(!(await p.list({ project: `${project}-other` })).some((o) => o.id === first.id))
    })

    test('create with an id that exists is refused by name, and the running instance is left as it was', async () => {
      const was = await p.inspect(first)
      const again = { ...spec(1, 9), env: { GREETING: 'replaced' } }
      await assert.rejects(p.create(again), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'INSTANCE_EXISTS', err.message)
        assert.ok(err.message.includes(first.id), err.message)
        return true
      })
      const now = await p.inspect(first)
      assert.equal(now.state, 'running')
      assert.equal(now.env.GREETING, 'hello world')
      assert.equal(now.env.PORT, was.env.PORT)
      assert.deepEqual(now.labels, spec(1).labels)
      const ep = await p.endpoint(first, 8080)
      assert.equal(await fetchText(`http://${ep.host}:${ep.port}/index.html`), CONTRACT_IMAGE.PAGE)
    })

    test('exec runs a command and returns its output and exit code; deploy files are read-only', async () => {
      assert.deepEqual(await p.exec(first, ['cat', '/etc/grail/app.conf']), {
        code: 0,
        stdout: 'mode=contract\n',
        stderr: '',
      })
      assert.equal((await p.exec(first, ['sh', '-c', 'echo out; echo err >&2; exit 3'])).code, 3)
      const write = await p.exec(first, ['sh', '-c', 'echo changed > /etc/grail/app.conf'])
      assert.notEqual(write.code, 0)
    })

    test('diff reports exactly the changed, added and deleted paths; volumes and deploy files excluded', async () => {
      const script = [
        'echo more >> /srv/data/change-me',
        'rm /srv/data/delete-me',
        'echo new > /srv/data/added',
        'mkdir /srv/newdir && echo x > /srv/newdir/file',
        'echo kept > /var/lib/data/kept',
      ].join(' && ')
      const ran = await p.exec(first, ['sh', '-c', script])
      assert.equal(ran.code, 0, ran.stderr)
      const changes = await p.diff(first)
      // what is there now comes with each A and C: type, mode, owner, size and the content's sha256
      const added = changes.find((c) => c.path === '/srv/data/added')?.current
      assert.equal(added?.type, 'file')
      assert.equal(added?.size, 4)
      assert.equal(added?.sha256, createHash('sha256').update('new\n').digest('hex'))
      assert.equal(changes.find((c) => c.path === '/srv/newdir')?.current?.type, 'directory')
      assert.equal(changes.find((c) => c.kind === 'D')?.current, undefined)
      assert.deepEqual(
        changes.map((c) => ({ kind: c.kind, path: c.path })),
        [
          { kind: 'A', path: '/srv/data/added' },
          { kind: 'C', path: '/srv/data/change-me' },
          { kind: 'D', path: '/srv/data/delete-me' },
          { kind: 'A', path: '/srv/newdir' },
          { kind: 'A', path: '/srv/newdir/file' },
        ],
      )
    })

    test('logs hold what the process printed', async () => {
      const port = (await p.inspect(first)).env.PORT
      const deadline = Date.now() + 5000
      let logs = await p.logs(first)
      while (!logs.includes(CONTRACT_IMAGE.LOG_LINE) && Date.now() < deadline) {
        await sleep(50)
        logs = await p.logs(first)
      }
      assert.ok(logs.includes(`${CONTRACT_IMAGE.LOG_LINE}${port}\n`), logs)
      assert.equal((await p.logs(first, { tailLines: 1 })).split('\n').length, 2)
    })

    test('a second instance of the service has its own endpoint and sees the volume', async () => {
      const second = await handle(2, 2)
      await p.start(second)
      const [a, b] = [await p.endpoint(first, 8080), await p.endpoint(second, 8080)]
      assert.notEqual(`${a.host}:${a.port}`, `${b.host}:${b.port}`)
      assert.equal(await fetchText(`http://${b.host}:${b.port}/index.html`), CONTRACT_IMAGE.PAGE)
      assert.equal((await p.exec(second, ['cat', '/var/lib/data/kept'])).stdout, 'kept\n')
      assert.deepEqual(await p.diff(second), [])
      await p.destroy(second)
    })

    test('list finds an instance created behind its back, with its labels, and destroy removes it', async () => {
      const other = spec(6, 6)
      await s.createElsewhere(other)
      const h = { id: other.id, provider: p.name }
      await eventually(async () => {
        const found = (await p.list({ project, service: 'web' })).find((o) => o.id === other.id)
        assert.deepEqual(found?.labels, other.labels)
        assert.equal(found?.state, 'running')
      })
      assert.equal((await p.inspect(h)).imageDigest, s.image.digest)
      await p.destroy(h)
      await eventually(async () => assert.ok(!(await p.list({ project })).some((o) => o.id === other.id)))
    })

    test('stop: the instance is reported stopped', async () => {
      await p.stop(first, { graceMs: 1000 })
      await eventually(async () => assert.equal((await p.inspect(first)).state, 'stopped'))
    })

    test('destroy: gone from list, a second destroy is a no-op, the volume data survives', async () => {
      await p.destroy(first)
      await eventually(async () => assert.ok(!(await p.list({ project })).some((o) => o.id === first.id)))
      await p.destroy(first)
      const third = await handle(3, 3)
      await p.start(third)
      assert.equal((await p.exec(third, ['cat', '/var/lib/data/kept'])).stdout, 'kept\n')
      await p.destroy(third)
      await eventually(async () => assert.deepEqual(await p.list({ project }), []))
    })

    for (const point of ['record', 'mount'] as const) {
      test(`a create killed after ${point} is reported missing and destroy cleans it`, async (t) => {
        if (!s.crash) return t.skip('provider creates atomically')
        const sp = spec(point === 'record' ? 4 : 5)
        await s.crash(sp, point)
        const h = { id: sp.id, provider: p.name }
        const o = (await p.list({ project })).find((x) => x.id === sp.id)
        assert.equal(o?.state, 'missing')
        assert.equal((await p.inspect(h)).state, 'missing')
        await p.destroy(h)
        assert.ok(!(await p.list({ project })).some((x) => x.id === sp.id))
        await p.destroy(h)
      })
    }

    boundaryCases({ provider: () => p, setup: () => s, spec })
  })
}

/**
 * The methods that make the provider boundary complete (nothing outside a provider reads its files,
 * removes its volumes or knows its ids): readFile, checkId, removeVolumes, reconcile. Registered inside
 * the provider's `describe`, after the cases above (which leave no instance behind).
 */
function boundaryCases(c: {
  provider: () => RuntimeProvider
  setup: () => ContractSetup
  spec: (n: number, release?: number) => InstanceSpec
}): void {
  const text = async (stream: Readable): Promise<string> => {
    const chunks: Buffer[] = []
    for await (const chunk of stream) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  }

  test('checkId accepts the contract ids and rejects the rest, naming the id', () => {
    const p = c.provider()
    for (const ok of ['a', 'web-r1-abc123', '0', 'a'.repeat(63)]) p.checkId(ok)
    for (const bad of ['../x', 'x/y', 'Web', 'a'.repeat(64), '-x', '', 'a b', 'a.b']) {
      assert.throws(
        () => p.checkId(bad),
        (err: Error & { code?: string }) =>
          err.code === 'BAD_INSTANCE_ID' && err.message.includes(JSON.stringify(bad)),
        bad,
      )
    }
  })

  test('readFile streams a file as the instance has it now, following links inside it only', async () => {
    const p = c.provider()
    const h = await p.create(c.spec(6, 6))
    await p.start(h)
    // resolved in the instance the link is /tmp/<name>, which does not exist there; followed on this
    // machine from a directory of the instance's files, it would reach this file
    const hostFile = join(tmpdir(), `grail-contract-escape-${randomBytes(4).toString('hex')}`)
    await writeFile(hostFile, 'a file of the host\n')
    const script = [
      'echo readable > /srv/data/change-me',
      'ln -s /srv/www/index.html /srv/data/inner-link',
      `ln -s ${'../'.repeat(40)}${hostFile.slice(1)} /srv/data/escape`,
    ].join(' && ')
    const ran = await p.exec(h, ['sh', '-c', script])
    assert.equal(ran.code, 0, ran.stderr)
    assert.equal(await text(await p.readFile(h, '/srv/data/change-me')), 'readable\n')
    // an unchanged file of the image, and one through a link inside the instance
    assert.equal(await text(await p.readFile(h, '/srv/www/index.html')), CONTRACT_IMAGE.PAGE)
    assert.equal(await text(await p.readFile(h, '/srv/data/inner-link')), CONTRACT_IMAGE.PAGE)
    // a deleted file is not there any more
    assert.equal((await p.exec(h, ['rm', '/srv/data/delete-me'])).code, 0)
    await assert.rejects(p.readFile(h, '/srv/data/delete-me'), { code: 'INSTANCE_PATH_NOT_FOUND' })
    try {
      await assert.rejects(p.readFile(h, '/srv/data/escape'), { code: 'INSTANCE_PATH_NOT_FOUND' })
    } finally {
      await rm(hostFile, { force: true })
    }
    await assert.rejects(p.readFile(h, '/srv/data'), { code: 'INSTANCE_PATH_NOT_FILE' })
    for (const outside of ['srv/www/index.html', '/srv/../../etc/hostname', '/']) {
      await assert.rejects(p.readFile(h, outside), { code: 'BAD_PATH' }, outside)
    }
    await p.destroy(h)
  })

  test('removeVolumes removes the data that destroy kept, in its environment only', async () => {
    const p = c.provider()
    const labels = c.spec(7).labels
    const h = await p.create(c.spec(7, 7))
    await p.start(h)
    assert.equal((await p.exec(h, ['sh', '-c', 'echo mine > /var/lib/data/mine'])).code, 0)
    await p.destroy(h)
    const other = { project: labels.project, environment: 'other' }
    assert.deepEqual(await p.removeVolumes(other), [])
    const again = await p.create(c.spec(8, 8))
    await p.start(again)
    assert.equal((await p.exec(again, ['cat', '/var/lib/data/mine'])).stdout, 'mine\n')
    await p.destroy(again)
    const scope = { project: labels.project, environment: labels.environment }
    assert.deepEqual(await p.removeVolumes(scope), ['data'])
    assert.deepEqual(await p.removeVolumes(scope), [])
    const fresh = await p.create(c.spec(9, 9))
    await p.start(fresh)
    assert.notEqual((await p.exec(fresh, ['cat', '/var/lib/data/mine'])).code, 0)
    await p.destroy(fresh)
  })

  test('reconcile removes a half-created instance nothing records, so its id can be created again', async (t) => {
    const s = c.setup()
    const p = c.provider()
    if (!s.crash) return t.skip('provider creates atomically')
    const sp = c.spec(10, 10)
    await s.crash(sp, 'unrecorded')
    const scope = { project: sp.labels.project }
    assert.ok(!(await p.list(scope)).some((o) => o.id === sp.id))
    const cleaned = await p.reconcile(scope)
    assert.equal(cleaned.length, 1, cleaned.join(', '))
    assert.match(cleaned[0] ?? '', new RegExp(sp.id))
    assert.deepEqual(await p.reconcile(scope), [])
    const h = await p.create(sp)
    await p.start(h)
    assert.equal((await p.inspect(h)).state, 'running')
    await p.destroy(h)
    assert.deepEqual(await p.list(scope), [])
  })
}
