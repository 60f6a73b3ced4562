// Test helpers for the tar tests (imported only by *.test.ts files).
import { createHash } from 'node:crypto'
import { lstat, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import tar from 'tar-stream'
import type { Header } from 'tar-stream'
import { runCommand } from '../../util/exec.js'

/** A fresh directory under the system temp dir, removed (after unmounts) when the test ends. */
export async function tempDir(t: TestContext, prefix = 'grail-tar-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export interface DescribeOptions {
  mtime?: boolean
}

/**
 * Everything a user could observe about a tree, one line per path (type, mode, owner, size, content
 * hash, link target, device numbers, optionally mtime), for comparing two trees with deepEqual.
 */
export async function describeTree(
  root: string,
  opts: DescribeOptions = {},
): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const abs = join(dir, name)
      const path = rel ? `${rel}/${name}` : name
      const st = await lstat(abs)
      const mode = (st.mode & 0o7777).toString(8)
      let what = `${mode} ${st.uid}:${st.gid}`
      if (st.isDirectory()) what = `dir ${what}`
      else if (st.isFile()) what = `file ${what} ${st.size} ${sha(await readFile(abs))}`
      else if (st.isSymbolicLink()) what = `symlink ${st.uid}:${st.gid} -> ${await readlink(abs)}`
      else if (st.isFIFO()) what = `fifo ${what}`
      else if (st.isCharacterDevice()) what = `char ${what} ${st.rdev}`
      else if (st.isBlockDevice()) what = `block ${what} ${st.rdev}`
      if (opts.mtime) what += ` @${Math.floor(st.mtimeMs / 1000)}`
      out[path] = what
      if (st.isDirectory()) await walk(abs, path)
    }
  }
  await walk(root, '')
  return out
}

/** A short content hash for tree descriptions. */
export function sha(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 16)
}

/** A tar written with tar-stream directly, bypassing Grail's writer: how hostile archives are made. */
export async function craftTar(
  entries: Array<Partial<Header> & { name: string; content?: string }>,
): Promise<Buffer> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer)
    })
    pack.on('end', () => resolve())
    pack.on('error', reject)
  })
  for (const { content, ...header } of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve())
      if (content !== undefined) pack.entry(header, content, cb)
      else pack.entry(header, cb)
    })
  }
  pack.finalize()
  await done
  return Buffer.concat(chunks)
}

/** Mounts an overlay; unmounted when the test ends (before the temp dir is removed). */
export async function mountOverlay(
  t: TestContext,
  target: string,
  options: string,
): Promise<() => Promise<void>> {
  await runCommand({ file: 'mount', args: ['-t', 'overlay', 'overlay', '-o', options, target] })
  let mounted = true
  const unmount = async () => {
    if (!mounted) return
    mounted = false
    await runCommand({ file: 'umount', args: [target] })
  }
  t.after(unmount)
  return unmount
}
