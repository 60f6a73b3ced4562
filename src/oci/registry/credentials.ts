import { readFile, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { GrailError, isErrno } from '../../errors.js'
import type { RegistryAuth } from '../../spec/types.js'
import type { Credentials } from './types.js'

interface DockerAuthEntry {
  auth?: unknown
  username?: unknown
  password?: unknown
  identitytoken?: unknown
}

/** The entry of a docker config's `auths` for `host`: the bare key, or one with a scheme and path. */
function entryFor(auths: Record<string, DockerAuthEntry>, host: string): DockerAuthEntry | undefined {
  const want = host.toLowerCase()
  if (auths[want] !== undefined) return auths[want]
  for (const [key, value] of Object.entries(auths)) {
    const bare = key
      .toLowerCase()
      .replace(/^[a-z]+:\/\//, '')
      .replace(/\/.*$/, '')
    if (bare === want) return value
  }
  return undefined
}

function fromEntry(e: DockerAuthEntry, where: string): Credentials {
  if (typeof e.identitytoken === 'string' && e.identitytoken.length > 0) {
    return { kind: 'identity-token', token: e.identitytoken }
  }
  if (typeof e.auth === 'string' && e.auth.length > 0) {
    const text = Buffer.from(e.auth, 'base64').toString('utf8')
    const colon = text.indexOf(':')
    if (colon <= 0) {
      throw new GrailError(
        'REGISTRY_CREDENTIALS',
        `${where}: the "auth" entry is not base64 of user:password`,
        {
          hint: 'run `docker login` again, or write "username" and "password"',
        },
      )
    }
    return { kind: 'basic', username: text.slice(0, colon), password: text.slice(colon + 1) }
  }
  if (typeof e.username === 'string' && typeof e.password === 'string') {
    return { kind: 'basic', username: e.username, password: e.password }
  }
  throw new GrailError(
    'REGISTRY_CREDENTIALS',
    `${where}: the entry has no auth, username/password or identitytoken`,
    {
      hint: 'write {"username": …, "password": …}, or a docker config.json with "auths"',
    },
  )
}

async function readJsonFile(path: string): Promise<unknown> {
  const text = await readFile(path, 'utf8')
  try {
    return JSON.parse(text)
  } catch {
    // the parser's message can quote the file: never shown
    throw new GrailError('REGISTRY_CREDENTIALS', `credentials file ${path} is not valid JSON`, {
      hint: 'a docker config.json ({"auths": {"HOST": {"auth": …}}}) or {"username": …, "password": …}',
    })
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * The credentials for `host` from the spec's `auth:`. Nothing read here is ever written anywhere; callers
 * add `redactable(creds)` to their log redaction.
 */
export async function resolveCredentials(
  host: string,
  auth: RegistryAuth,
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): Promise<Credentials> {
  switch (auth.kind) {
    case 'none':
      return { kind: 'anonymous' }
    case 'env': {
      const username = env[auth.username]
      const password = env[auth.password]
      for (const [name, value] of [
        [auth.username, username],
        [auth.password, password],
      ] as const) {
        if (value === undefined || value === '') {
          throw new GrailError(
            'REGISTRY_CREDENTIALS',
            `registry ${host}: environment variable ${name} is not set`,
            {
              hint: `the registry's auth: env names ${auth.username} and ${auth.password}; set both`,
            },
          )
        }
      }
      return { kind: 'basic', username: username as string, password: password as string }
    }
    case 'file': {
      let mode: number
      try {
        mode = (await stat(auth.path)).mode
      } catch (err) {
        if (isErrno(err, 'ENOENT')) {
          throw new GrailError(
            'REGISTRY_CREDENTIALS',
            `credentials file ${auth.path} for registry ${host} does not exist`,
            {
              hint: 'create it (mode 600), or change the registry auth: file',
            },
          )
        }
        throw err
      }
      if ((mode & 0o077) !== 0) {
        throw new GrailError(
          'REGISTRY_CREDENTIALS',
          `credentials file ${auth.path} is readable by others (mode ${(mode & 0o777).toString(8)})`,
          {
            hint: `chmod 600 ${auth.path}`,
          },
        )
      }
      const json = await readJsonFile(auth.path)
      if (!isObject(json)) {
        throw new GrailError('REGISTRY_CREDENTIALS', `credentials file ${auth.path} is not a JSON object`)
      }
      if (isObject(json.auths)) {
        const entry = entryFor(json.auths as Record<string, DockerAuthEntry>, host)
        if (entry === undefined) {
          throw new GrailError(
            'REGISTRY_CREDENTIALS',
            `credentials file ${auth.path} has no auths entry for ${host}`,
            {
              hint: `add "auths": {"${host}": {"auth": base64 of user:password}}`,
            },
          )
        }
        return fromEntry(entry, `credentials file ${auth.path} (${host})`)
      }
      return fromEntry(json as DockerAuthEntry, `credentials file ${auth.path}`)
    }
    case 'auto': {
      const dir =
        env.DOCKER_CONFIG !== undefined && env.DOCKER_CONFIG !== ''
          ? env.DOCKER_CONFIG
          : join(home, '.docker')
      const path = join(dir, 'config.json')
      let json: unknown
      try {
        json = await readJsonFile(path)
      } catch (err) {
        if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return { kind: 'anonymous' }
        throw err
      }
      if (!isObject(json) || !isObject(json.auths)) return { kind: 'anonymous' }
      const entry = entryFor(json.auths as Record<string, DockerAuthEntry>, host)
      if (entry === undefined) return { kind: 'anonymous' }
      // an entry with nothing in it (credential helpers keep the secret elsewhere): anonymous
      const e = entry as DockerAuthEntry
      if (e.auth === undefined && e.identitytoken === undefined && e.password === undefined)
        return { kind: 'anonymous' }
      return fromEntry(e, `${path} (${host})`)
    }
  }
}

/** The secret strings of `creds` (password, token, and the base64 forms a header would carry), for redaction. */
export function redactable(creds: Credentials): string[] {
  switch (creds.kind) {
    case 'anonymous':
      return []
    case 'basic': {
      const b64 = Buffer.from(`${creds.username}:${creds.password}`).toString('base64')
      return [creds.password, b64].filter((s) => s.length > 0)
    }
    case 'identity-token':
      return [creds.token]
  }
}
