// The provider contract against the local provider: real runc containers over overlay mounts of the
// contract image (test/helpers/contract-image.ts: built once by the real builder from a busybox rootfs, in
// a temp Grail home); nothing may stay mounted. Then what only the local provider promises: detached instances, strays found by annotation, crash cleanup.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Manifest } from '../../src/oci/types.js'
import { CONTRACT_IMAGE, runProviderContract } from '../../src/runtime/contract.js'
import type { InstanceSpec, RuntimeProvider } from '../../src/runtime/index.js'
import { createLocalProvider, reconcileLocal } from '../../src/runtime/index.js'
import { createCrashed } from '../../src/runtime/local/testing.js'
import { mountsUnder } from '../../src/util/mounts.js'
import { type ContractImage, assertNothingMounted, contractImageFixture } from '../helpers/contract-image.js'
import { REPO } from '../helpers/project.js'

const image = contractImageFixture()

/**
 * Creates and starts `spec` from another process with a provider object of its own, as a second Grail
 * would: nothing of it is known to this process's providers.
 */
async function createInChild(f: ContractImage, spec: InstanceSpec): Promise<void> {
  const script = join(f.dir, 'start.mts')
  await writeFile(
    script,
    `import { createLocalProvider } from ${JSON.stringify(join(REPO, 'src/runtime/index.ts'))}
import { openStore } from ${JSON.stringify(join(REPO, 'src/oci/store.ts'))}
const [home, spec] = JSON.parse(process.argv[2])
const p = createLocalProvider({ home, store: await openStore(home.oci, home.tmp) })
await p.start(await p.create(spec))
`,
  )
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify([f.home, spec])], {
      cwd: REPO,
      stdio: 'inherit',
    })
    child.on('close', resolve)
  })
  assert.equal(code, 0, `the child that creates ${spec.id} exited with ${code}`)
}

/** Moves the image's layer blobs out of the store while `fn` runs, and back. */
async function withoutLayerBlobs(f: ContractImage, fn: () => Promise<void>): Promise<void> {
  const manifest = await f.store.readJson<Manifest>(f.image.digest)
  const blobs = manifest.layers.map((l) => f.store.blobPath(l.digest))
  for (const b of blobs) await rename(b, `${b}.away`)
  try {
    await fn()
  } finally {
    for (const b of blobs) await rename(`${b}.away`, b)
  }
}

runProviderContract('local (runc + overlayfs)', async () => {
  const f = await image()
  return {
    provider: createLocalProvider({ home: f.home, store: f.store }),
    image: f.image,
    crash: (s, point) => createCrashed(f.home, f.store, s, point),
    createElsewhere: (s) => createInChild(f, s),
    withoutImageSource: (fn) => withoutLayerBlobs(f, fn),
    cleanup: () => assertNothingMounted(f),
  }
})

describe('local provider', () => {
  let f: ContractImage
  let p: RuntimeProvider
  const scope = { project: 'local-only' }
  const instance = (id: string): InstanceSpec => ({
    id,
    labels: { project: scope.project, environment: 'test', service: 'web', release: 7 },
    image: f.image,
    env: {},
    files: {},
    volumes: [],
    port: 8080,
  })
  before(async () => {
    f = await image()
    p = createLocalProvider({ home: f.home, store: f.store })
  })
  after(async () => {
    for (const o of await p.list(scope)) await p.destroy({ id: o.id, provider: 'local' })
    await assertNothingMounted(f)
  })

  test('an instance outlives the process that created and started it', async () => {
    await createInChild(f, instance('detached'))
    const h = { id: 'detached', provider: 'local' }
    assert.equal((await p.inspect(h)).state, 'running')
    const ep = await p.endpoint(h, 8080)
    const deadline = Date.now() + 5000
    let body = ''
    while (Date.now() < deadline && body === '') {
      body = await fetch(`http://${ep.host}:${ep.port}/index.html`).then(
        (r) => r.text(),
        () => '',
      )
    }
    assert.equal(body, CONTRACT_IMAGE.PAGE)
    await p.destroy(h)
  })

  test('a container whose record is lost is still listed, by its annotations, and destroyable', async () => {
    const h = await p.create(instance('stray'))
    await p.start(h)
    await rm(join(f.home.instances, 'stray', 'instance.json'))
    const o = (await p.list(scope)).find((x) => x.id === 'stray')
    assert.equal(o?.state, 'running')
    assert.deepEqual(o?.labels, instance('stray').labels)
    assert.equal(o?.imageDigest, f.image.digest)
    await p.destroy(h)
    assert.ok(!(await p.list(scope)).some((x) => x.id === 'stray'))
    assert.ok(!existsSync(join(f.home.instances, 'stray')))
  })

  test('reconcileLocal unmounts and removes a bundle left with neither record nor container', async () => {
    const s = instance('leftover')
    await createCrashed(f.home, f.store, s, 'mount')
    const dir = join(f.home.instances, 'leftover')
    assert.equal((await mountsUnder(dir)).length, 1)
    await rm(join(dir, 'instance.json'))
    // a recorded instance is not reconcile's to remove: list reports it missing, plan decides
    await createCrashed(f.home, f.store, instance('recorded'), 'record')
    assert.deepEqual(await reconcileLocal(f.home), [dir])
    assert.deepEqual(await mountsUnder(dir), [])
    assert.ok(!existsSync(dir))
    assert.equal((await p.list(scope)).find((x) => x.id === 'recorded')?.state, 'missing')
  })

  test('a second create of an existing id is refused and leaves the first instance alone', async () => {
    const h = await p.create(instance('twice'))
    await assert.rejects(p.create(instance('twice')), { code: 'INSTANCE_EXISTS' })
    assert.equal((await p.inspect(h)).state, 'created')
    await p.destroy(h)
  })

  test('an instance created but never started can be stopped', async () => {
    const h = await p.create(instance('never-started'))
    await p.stop(h, { graceMs: 500 })
    assert.equal((await p.inspect(h)).state, 'stopped')
    await p.destroy(h)
  })

  test('invalid ids are refused before they reach a path or runc', async () => {
    await assert.rejects(p.create(instance('../escape')), { code: 'BAD_INSTANCE_ID' })
    await assert.rejects(p.destroy({ id: '-rf', provider: 'local' }), { code: 'BAD_INSTANCE_ID' })
  })
})
