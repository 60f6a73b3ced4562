import { mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { GrailError, isErrno } from '../errors.js'
import { writeAtomic } from '../util/write-atomic.js'
import { parseBackends } from './daemon-protocol.js'
import type { Backend } from './types.js'

/** What a proxy daemon persists so that a restart comes back with the same routes. */
interface StateFile {
  readonly version: 1
  readonly backends: Backend[]
}

/** Reads the persisted backend list; an absent file means no routes yet. A damaged file is an error. */
export async function readBackendState(file: string): Promise<Backend[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  }
  let parsed: Partial<StateFile>
  try {
    parsed = JSON.parse(text) as Partial<StateFile>
  } catch (err) {
    throw new GrailError('PROXY_BAD_STATE', `the proxy state file ${file} is not valid JSON`, {
      hint: 'remove it and run `grail apply` again to re-register the healthy instances',
      cause: err,
    })
  }
  if (parsed.version !== 1) {
    throw new GrailError(
      'PROXY_BAD_STATE',
      `the proxy state file ${file} has unknown version ${parsed.version}`,
    )
  }
  return parseBackends(parsed.backends, file)
}

/**
 * Writes the backend list atomically: a temp file in the same directory, fsync'd, then renamed over the
 * old one, so a crash leaves either the old list or the new one, never half of one.
 */
export async function writeBackendState(file: string, backends: readonly Backend[]): Promise<void> {
  const body: StateFile = { version: 1, backends: [...backends] }
  await mkdir(dirname(file), { recursive: true })
  await writeAtomic(file, `${JSON.stringify(body)}\n`)
}
