import { chmodSync, readdirSync, statSync } from 'node:fs'
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../errors.js'

/**
 * Modes of everything under a Grail home that can hold a secret (env values, deploy files, hotfix
 * output): owner only, whatever the umask. The one place these modes are decided; the home dir itself
 * is private too, so a file an older Grail wrote world-readable is still out of reach.
 */
export const PRIVATE_FILE_MODE = 0o600
export const PRIVATE_DIR_MODE = 0o700

/** Writes a file only its owner can read; an existing file is made so too (writeFile keeps its mode). */
export async function writePrivateFile(path: string, data: string | Buffer): Promise<void> {
  await writeFile(path, data, { mode: PRIVATE_FILE_MODE })
  await chmod(path, PRIVATE_FILE_MODE)
}

/** Makes a directory (and its parents) and gives the directory itself the private mode. */
export async function makePrivateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE })
  await chmod(path, PRIVATE_DIR_MODE)
}

/** Sets `mode` on `path` when it exists and has another one. */
export function tightenSync(path: string, mode: number): void {
  try {
    if ((statSync(path).mode & 0o7777) !== mode) chmodSync(path, mode)
  } catch (err) {
    if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err
  }
}

/** Files of an instance's bundle dir that hold its env (record, runtime config) or its output (logs). */
const INSTANCE_FILES = ['instance.json', 'config.json', 'stdout.log', 'stderr.log']

/**
 * Brings the modes of a Grail home up to date, for homes an older Grail made with the umask's modes:
 * the home, the state database and its WAL files, the spec cache, and every instance bundle's dir and
 * secret-bearing files. Deploy files of running instances keep their mode, since the app reads them
 * (their bundle dir is private).
 */
export function tightenHomeSync(root: string): void {
  // a sticky dir (/tmp) is shared by design: never the home itself, so never made private
  if ((statSync(root).mode & 0o1000) === 0) tightenSync(root, PRIVATE_DIR_MODE)
  for (const f of ['state.db', 'state.db-wal', 'state.db-shm', 'spec-cache.json'])
    tightenSync(join(root, f), PRIVATE_FILE_MODE)
  const instances = join(root, 'instances')
  tightenSync(instances, PRIVATE_DIR_MODE)
  let names: string[] = []
  try {
    names = readdirSync(instances, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
  } catch (err) {
    if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err
  }
  for (const name of names) {
    const dir = join(instances, name)
    tightenSync(dir, PRIVATE_DIR_MODE)
    for (const f of INSTANCE_FILES) tightenSync(join(dir, f), PRIVATE_FILE_MODE)
  }
}
