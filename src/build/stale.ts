import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../errors.js'
import type { GrailHome } from '../home.js'
import { mountsUnder, pidAlive } from '../util/mounts.js'

/** Work dirs and sandbox ids carry their owner's pid: `<label>-<pid>-<hex>`. */
const OWNED = /-(\d+)-[0-9a-f]{8,12}$/

function ownerDead(name: string): boolean {
  const m = OWNED.exec(name)
  return m !== null && !pidAlive(Number(m[1]))
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  }
}

/**
 * Finishes what a killed build left behind: build sandboxes whose owner is gone are deleted, their overlay
 * mounts unmounted, and their temp dirs removed. Work of a build still running is left alone.
 */
export async function cleanStaleWork(home: GrailHome): Promise<string[]> {
  const cleaned: string[] = []
  // runc keeps one state dir per container under its root: reading it costs far less than `runc list`
  for (const id of (await listDir(home.runcRoot)).filter((n) => n.startsWith('grail-b-'))) {
    if (!ownerDead(id)) continue
    const [{ runCommand }, { runcDeleteCommand }] = await Promise.all([
      import('../util/exec.js'),
      import('../container/sandbox.js'),
    ])
    await runCommand(runcDeleteCommand({ runcRoot: home.runcRoot, id }), { allowFailure: true })
    cleaned.push(`sandbox ${id}`)
  }
  for (const dir of [home.tmp, home.snapshots]) {
    for (const name of await listDir(dir)) {
      if (!ownerDead(name)) continue
      const path = join(dir, name)
      const mounts = await mountsUnder(path)
      if (mounts.length > 0) {
        const [{ runCommand }, { umountCommand }] = await Promise.all([
          import('../util/exec.js'),
          import('../container/sandbox.js'),
        ])
        for (const m of mounts) await runCommand(umountCommand(m))
      }
      await rm(path, { recursive: true, force: true })
      cleaned.push(path)
    }
  }
  return cleaned
}
