// The provider contract against the local provider: real runc containers over overlay mounts of an image
// built by the real builder from a busybox rootfs, in a temp Grail home; nothing may stay mounted. Then
// what only the local provider promises: detached instances, strays found by annotation, crash cleanup.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { runBuild } from '../../src/build/index.js'
import type { GrailHome } from '../../src/home.js'
import { homeAt } from '../../src/home.js'
import type { OciStore } from '../../src/oci/store.js'
import { openStore } from '../../src/oci/store.js'
import { CONTRACT_IMAGE, runProviderContract } from '../../src/runtime/contract.js'
import type { ImageRef, InstanceSpec, RuntimeProvider } from '../../src/runtime/index.js'
import { createLocalProvider, reconcileLocal } from '../../src/runtime/index.js'
import { createCrashed } from '../../src/runtime/local/testing.js'
import { loadProject } from '../../src/spec/index.js'
import { mountsUnder } from '../../src/util/mounts.js'
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js'
import { REPO, removeDir, tempProject } from '../helpers/project.js'

const spec = `project: demo
images:
  app:
    base: { rootfs: ./rootfs.tar }
    steps:
      - run: ${CONTRACT_IMAGE.RUN}
      - copy: site/ /srv/www
      - cmd: ${JSON.stringify(CONTRACT_IMAGE.CMD)}
`

interface Fixture {
  dir: string
  home: GrailHome
  store: OciStore
  image: ImageRef
}

/** A temp project with its own Grail home and the contract image built into it by the real builder. */
async function fixture(): Promise<Fixture> {
  const dir = await tempProject({ 'grail.yaml': spec, 'site/index.html': CONTRACT_IMAGE.PAGE })
  makeBusyboxRootfs(join(dir, 'rootfs.tar'))
  const home = homeAt(join(dir, '.grail'))
  const built = (await runBuild({ project: await loadProject(dir), home })).images[0]
  assert.ok(built)
  const store = await openStore(home.oci, home.tmp)
  return { dir, home, store, image: { name: built.name, version: built.version, digest: built.digest } }
}

/** Removes the fixture after checking that nothing of its instances is still mounted. */
async function dispose(f: Fixture): Promise<void> {
  assert.deepEqual(await mountsUnder(f.dir), [])
  await removeDir(f.dir)
}

runProviderContract('local (runc + overlayfs)', async () => {
  const f = await fixture()
  return {
    provider: createLocalProvider({ home: f.home, store: f.store }),
    image: f.image,
    crash: (s, point) => createCrashed(f.home, f.store, s, point),
    cleanup: () => dispose(f),
  }
})

describe('local provider', () => {
  let f: Fixture
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
    f = await fixture()
    p = createLocalProvider({ home: f.home, store: f.store })
  })
  after(async () => {
    for (const o of await p.list(scope)) await p.destroy({ id: o.id, provider: 'local' })
    await dispose(f)
  })

  test('an instance outlives the process that created and started it', async () => {
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
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', script, JSON.stringify([f.home, instance('detached')])],
        { cwd: REPO, stdio: 'inherit' },
      )
      child.on('close', resolve)
    })
    assert.equal(code, 0)
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
