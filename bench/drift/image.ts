// The image bench/drift scans: a busybox rootfs plus FILE_DIRS × FILES_PER_DIR small files under
// /srv/files, built by Grail's own CLI into a Grail home of its own inside the bench's temp dir.
import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type GrailHome, homeAt } from '../../src/home.js'
import type { Digest } from '../../src/oci/digest.js'
import type { ImageRef } from '../../src/runtime/types.js'
import { makeBusyboxRootfs } from '../../test/helpers/busybox-rootfs.js'
import { grail, parseJson } from '../../test/helpers/project.js'

export const FILE_DIRS = 100
export const FILES_PER_DIR = 100
export const FILE_BYTES = 200
export const FILES_ROOT = '/srv/files'

const pad = (n: number) => String(n).padStart(2, '0')

/** Path inside the image of generated file `f` of directory `d`: `/srv/files/d07/f42`. */
export function filePath(d: number, f: number): string {
  return `${FILES_ROOT}/d${pad(d)}/f${pad(f)}`
}

/** FILE_BYTES of content that depends only on the name, so every run builds the same image. */
export function fileContent(name: string): string {
  const hex = createHash('sha256').update(name).digest('hex')
  const body = `${name}\n${hex.repeat(4)}`.slice(0, FILE_BYTES - 1).padEnd(FILE_BYTES - 1, '.')
  return `${body}\n`
}

const SPEC = `project: driftbench
images:
  files:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: files/ ${FILES_ROOT}
      - cmd: [/bin/sleep, "3600"]
`

export interface DriftImage {
  /** the project dir (grail.yaml, rootfs.tar, files/, .grail/) */
  dir: string
  home: GrailHome
  image: ImageRef
  /** regular files in the image: the generated ones plus the busybox rootfs's */
  fileCount: number
  buildMs: number
}

/**
 * Writes the project into `dir` (which must not exist) and builds it with `grail --json build`, with
 * GRAIL_HOME pointing at `dir/.grail` so a GRAIL_HOME of the caller's is never touched.
 */
export async function buildDriftImage(dir: string): Promise<DriftImage> {
  await mkdir(dir)
  await writeFile(join(dir, 'grail.yaml'), SPEC)
  makeBusyboxRootfs(join(dir, 'rootfs.tar'))
  for (let d = 0; d < FILE_DIRS; d++) {
    const sub = join(dir, 'files', `d${pad(d)}`)
    await mkdir(sub, { recursive: true })
    const writes: Promise<void>[] = []
    for (let f = 0; f < FILES_PER_DIR; f++) {
      writes.push(writeFile(join(sub, `f${pad(f)}`), fileContent(filePath(d, f))))
    }
    await Promise.all(writes)
  }
  const home = homeAt(join(dir, '.grail'))
  const t0 = performance.now()
  const out = parseJson<{ images: Array<{ name: string; version: number; digest: Digest }> }>(
    await grail(['-C', dir, '--json', 'build'], { env: { GRAIL_HOME: home.root } }),
  )
  const buildMs = performance.now() - t0
  const built = out.images[0]
  if (!built) throw new Error(`grail build reported no image: ${JSON.stringify(out)}`)
  return {
    dir,
    home,
    image: { name: built.name, version: built.version, digest: built.digest },
    // busybox rootfs: /bin/busybox, /etc/passwd, /etc/group (its applets are symlinks)
    fileCount: FILE_DIRS * FILES_PER_DIR + 3,
    buildMs,
  }
}
