// The instances bench/drift scans: created and started in this process through the local provider, then
// changed from the host through their merged overlay rootfs, the way a process inside would change them.
import { appendFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { GrailHome } from '../../src/home.js'
import { type OciStore, openStore } from '../../src/oci/store.js'
import { createLocalProvider } from '../../src/runtime/index.js'
import { instancePaths } from '../../src/runtime/local/layout.js'
import type { FileChange, ImageRef, InstanceHandle, RuntimeProvider } from '../../src/runtime/types.js'
import { FILE_BYTES, FILE_DIRS, filePath } from './image.js'

export const SCOPE = { project: 'driftbench', environment: 'bench' }

export interface Fleet {
  home: GrailHome
  store: OciStore
  provider: RuntimeProvider
  handles: InstanceHandle[]
  /** the merged rootfs of an instance as the host sees it */
  rootfs(h: InstanceHandle): string
  /** destroys every instance of the bench's scope, also ones whose create failed half-way */
  destroyAll(): Promise<void>
}

/** Opens the home's store and a local provider on it; no instance exists yet. */
export async function openFleet(home: GrailHome): Promise<Fleet> {
  const store = await openStore(home.oci, home.tmp)
  const provider = createLocalProvider({ home, store })
  const handles: InstanceHandle[] = []
  return {
    home,
    store,
    provider,
    handles,
    rootfs: (h) => instancePaths(home, h.id).rootfs,
    async destroyAll() {
      const ids = new Set([
        ...handles.map((h) => h.id),
        ...(await provider.list({ project: SCOPE.project })).map((o) => o.id),
      ])
      for (const id of ids) await provider.destroy({ id, provider: 'local' })
      handles.length = 0
    },
  }
}

/** Creates and starts `count` instances of `image` (`sleep 3600` as PID 1), one after another. */
export async function startInstances(fleet: Fleet, image: ImageRef, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const h = await fleet.provider.create({
      id: `drift-${String(i).padStart(2, '0')}`,
      labels: { ...SCOPE, service: 'files', release: 1 },
      image,
      env: {},
      files: {},
      volumes: [],
    })
    fleet.handles.push(h)
    await fleet.provider.start(h)
  }
}

/**
 * Changes five files of instance number `i` through its merged rootfs: two modified (one rewritten at
 * the same size, one appended to), two added (one beside the generated files, one in /etc) and one
 * deleted. Returns what a correct diff reports, sorted by path.
 */
export async function changeInstance(rootfs: string, i: number): Promise<FileChange[]> {
  const d = i % FILE_DIRS
  const other = (i + FILE_DIRS / 2) % FILE_DIRS
  const at = (path: string) => join(rootfs, path)
  const changes: FileChange[] = [
    { kind: 'C', path: filePath(d, 0) },
    { kind: 'C', path: filePath(d, 1) },
    { kind: 'A', path: `${filePath(d, 0)}.new` },
    { kind: 'A', path: `/etc/drift-${i}.conf` },
    { kind: 'D', path: filePath(other, 2) },
  ]
  const [c0, c1, a0, a1, d0] = changes.map((c) => c.path) as [string, string, string, string, string]
  await writeFile(at(c0), `${'X'.repeat(FILE_BYTES - 1)}\n`)
  await appendFile(at(c1), 'appended\n')
  await writeFile(at(a0), 'added\n')
  await writeFile(at(a1), `instance=${i}\n`)
  await rm(at(d0))
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

const show = (cs: readonly FileChange[]) => cs.map((c) => `${c.kind} ${c.path}`).join(', ')

/** Throws, naming the instance and both lists, unless `got` is exactly `expected`. */
export function checkDiff(id: string, got: readonly FileChange[], expected: readonly FileChange[]): void {
  if (show(got) !== show(expected)) {
    throw new Error(`diff of ${id} is wrong:\n  got      ${show(got)}\n  expected ${show(expected)}`)
  }
}
