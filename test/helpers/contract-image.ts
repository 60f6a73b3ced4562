// The image the provider contract runs against (CONTRACT_IMAGE in src/runtime/contract.ts), built once per
// test file by the real builder from a busybox rootfs into a temp project with its own Grail home. Every
// provider's suite (local now; docker, podman and swarm later) takes its image from here, so they all
// test the same bytes; a provider that needs the image elsewhere loads it from `store`.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after } from 'node:test'
import { runBuild } from '../../src/build/index.js'
import type { GrailHome } from '../../src/home.js'
import { homeAt } from '../../src/home.js'
import type { OciStore } from '../../src/oci/store.js'
import { openStore } from '../../src/oci/store.js'
import { CONTRACT_IMAGE } from '../../src/runtime/contract.js'
import type { ImageRef } from '../../src/runtime/index.js'
import { loadProject } from '../../src/spec/index.js'
import { mountsUnder } from '../../src/util/mounts.js'
import { makeBusyboxRootfs } from './busybox-rootfs.js'
import { removeDir, tempProject } from './project.js'

const SPEC = `project: demo
images:
  app:
    base: { rootfs: ./rootfs.tar }
    steps:
      - run: ${CONTRACT_IMAGE.RUN}
      - copy: site/ /srv/www
      - cmd: ${JSON.stringify(CONTRACT_IMAGE.CMD)}
`

export interface ContractImage {
  /** the temp project: grail.yaml, the rootfs tarball, and the Grail home under .grail/ */
  dir: string
  home: GrailHome
  store: OciStore
  image: ImageRef
}

/**
 * The contract image of a test file, built on the first call of the returned function (a second build of
 * the same spec would only repeat it); later calls get the same one. Call this at the top level of the
 * file: it registers, for the end of the file, a check that nothing under the project is still mounted
 * (an instance's overlay or volume left behind fails the file) and then the project's removal; a dir that
 * is still mounted is kept, not removed through its mounts.
 */
export function contractImageFixture(): () => Promise<ContractImage> {
  let built: Promise<ContractImage> | undefined
  after(async () => {
    const f = await built?.catch(() => undefined)
    if (!f) return
    await assertNothingMounted(f)
    await removeDir(f.dir)
  })
  return () => {
    built ??= buildContractImage()
    return built
  }
}

/** Fails when anything of the fixture's instances is still mounted (each suite checks after its cases). */
export async function assertNothingMounted(f: ContractImage): Promise<void> {
  assert.deepEqual(await mountsUnder(f.dir), [], `left mounted under ${f.dir}`)
}

async function buildContractImage(): Promise<ContractImage> {
  const dir = await tempProject({ 'grail.yaml': SPEC, 'site/index.html': CONTRACT_IMAGE.PAGE })
  makeBusyboxRootfs(join(dir, 'rootfs.tar'))
  const home = homeAt(join(dir, '.grail'))
  const out = (await runBuild({ project: await loadProject(dir), home })).images[0]
  assert.ok(out, 'the contract spec builds one image')
  const store = await openStore(home.oci, home.tmp)
  return { dir, home, store, image: { name: out.name, version: out.version, digest: out.digest } }
}
