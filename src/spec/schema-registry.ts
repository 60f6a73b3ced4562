/**
 * `registry:` (project level and per environment): where images are pushed and pulled, with the auth
 * source, CA and shared-cache switches. The schema checks the URL's shape; the prefix's default (the
 * project name) and host paths (`ca`, `auth.file`) are filled in by `normaliseProject`.
 */
import { z } from 'zod'
import { isLoopbackHost, repositoryPathProblem } from './registry-ref.js'
import { report } from './schema-common.js'
import { didYouMean } from './suggest.js'
import type { RegistryAuth } from './types.js'

type Ctx = z.core.ParsePayload<unknown>

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const envName = (what: string) =>
  z
    .string({ error: `expected the name of the environment variable that holds the ${what}` })
    .regex(ENV_NAME, {
      error: 'expected an environment variable name (letters, digits, "_"; not starting with a digit)',
    })

const AUTH_MODES = ['auto', 'none'] as const

const authSchema = z
  .union(
    [
      z
        .string()
        .check((ctx) => {
          if ((AUTH_MODES as readonly string[]).includes(ctx.value)) return
          report(
            ctx as Ctx,
            `expected auth: auto, none, {env: …} or {file: …}, found ${JSON.stringify(ctx.value)}`,
            ctx.value,
            {
              hint:
                didYouMean(ctx.value, AUTH_MODES) ??
                'for a user and password: auth: {env: {username: REGISTRY_USER, password: REGISTRY_PASSWORD}}',
            },
          )
        })
        .meta({ enum: [...AUTH_MODES] }),
      z.strictObject({
        env: z
          .strictObject({
            username: envName('user name').describe('Environment variable holding the user name.'),
            password: envName('password').describe('Environment variable holding the password or token.'),
          })
          .describe(
            'Names of the environment variables with the user name and password (never their values).',
          ),
      }),
      z.strictObject({
        file: z
          .string()
          .min(1)
          .describe(
            'A docker config.json (`auths`) or a `{"username", "password"}` JSON file, relative to the spec file; refused when group- or world-readable.',
          ),
      }),
    ],
    { error: 'expected auth: auto, none, {env: {username: VAR, password: VAR}} or {file: PATH}' },
  )
  .transform((a): RegistryAuth => {
    if (typeof a === 'string') return a === 'none' ? { kind: 'none' } : { kind: 'auto' }
    if ('env' in a) return { kind: 'env', username: a.env.username, password: a.env.password }
    return { kind: 'file', path: a.file }
  })

/** for editors only: the loader's own checks (checkUrl) say what is wrong with a URL */
const URL_PATTERN = '^[hH][tT][tT][pP][sS]?://[^/@?#]+/?$'

const registryObject = z.strictObject({
  url: z
    .string({ error: 'expected a registry URL such as https://registry.example.com' })
    .meta({ pattern: URL_PATTERN })
    .describe(
      '`https://host[:port]`, or `http://host[:port]` for a loopback registry (or with `insecure: true`); no path, query or credentials.',
    ),
  prefix: z
    .string({ error: 'expected a repository path such as myteam/web' })
    .optional()
    .describe(
      'Repository prefix: image `web` is pushed to `host/<prefix>/web`. Lowercase, `/`-separated. Default: the project name.',
    ),
  auth: authSchema
    .prefault('auto')
    .describe(
      'Where credentials come from: `auto` (`~/.docker/config.json` `auths` for the host, else anonymous), `none`, `{env: {username: VAR, password: VAR}}` or `{file: PATH}`. Credentials are never written to state, events, logs or images. Default `auto`.',
    ),
  ca: z
    .string()
    .min(1)
    .optional()
    .describe(
      'PEM file of the CA(s) to trust for this registry, relative to the spec file. Default: the system CAs.',
    ),
  insecure: z
    .boolean()
    .default(false)
    .describe(
      'Allow plain `http://` to a host that is not loopback (traffic and credentials unencrypted). Default `false`.',
    ),
  cache: z
    .strictObject({
      from: z
        .boolean()
        .default(false)
        .describe('Builds reuse step layers found in the registry. Default `false`.'),
      to: z
        .boolean()
        .default(false)
        .describe('Builds push their step layers to the registry. Default `false`.'),
    })
    .prefault({})
    .describe('The shared build cache (see docs/registry.md).'),
})

/** The schema's output; `prefix` is still optional and host paths are as written. */
export interface ParsedRegistry {
  url: string
  host: string
  prefix?: string
  auth: RegistryAuth
  ca?: string
  insecure: boolean
  cache: { from: boolean; to: boolean }
}

/**
 * Checks a registry URL: scheme, no credentials (never repeated in the message), no path or query, and
 * plain http only for loopback or with `insecure`. Returns the normalised `scheme://host[:port]`.
 */
function checkUrl(
  ctx: Ctx,
  url: string,
  path: PropertyKey[],
  insecure: boolean,
): { url: string; host: string } | undefined {
  // before anything that could echo the value: `user:pass@` is refused without showing it
  if (/^[^/]*\/\/[^/?#]*@/.test(url) || (!url.includes('//') && /^[^/?#]*@/.test(url))) {
    report(ctx, 'the registry URL has credentials in it (user:password@); they are not shown here', '', {
      path,
      hint: 'remove them from the URL and use auth: {env: {username: VAR, password: VAR}} or auth: {file: PATH} (see docs/registry.md)',
    })
    return undefined
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)
  if (!scheme) {
    report(
      ctx,
      `expected a registry URL starting with https:// or http://, found ${JSON.stringify(url)}`,
      url,
      {
        path,
        hint: `try "https://${url.replace(/^\/+/, '')}"`,
      },
    )
    return undefined
  }
  const proto = (scheme[1] as string).toLowerCase()
  if (proto !== 'https' && proto !== 'http') {
    report(ctx, `a registry URL is https:// or http://, not ${proto}://`, url, {
      path,
      hint: `try "https://${url.slice(scheme[0].length)}"`,
    })
    return undefined
  }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    report(
      ctx,
      `expected a registry URL such as https://registry.example.com:5000, found ${JSON.stringify(url)}`,
      url,
      {
        path,
        hint: 'write scheme://host[:port] with nothing after it',
      },
    )
    return undefined
  }
  const origin = `${proto}://${parsed.host}`
  if ((parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search !== '' || parsed.hash !== '') {
    const what =
      parsed.search !== '' || parsed.hash !== '' ? 'a query or fragment' : `a path (${parsed.pathname})`
    report(ctx, `a registry URL is scheme://host[:port] only, this one has ${what}`, url, {
      path,
      hint:
        parsed.pathname.replace(/^\/|\/$/g, '') !== '' && !parsed.pathname.startsWith('/v2')
          ? `url: ${origin} with prefix: ${parsed.pathname.replace(/^\/+|\/+$/g, '')}`
          : `url: ${origin}`,
    })
    return undefined
  }
  const host = parsed.host.toLowerCase()
  if (proto === 'http' && !insecure && !isLoopbackHost(host)) {
    report(
      ctx,
      `plain http to ${host}, which is not this machine: images and credentials would cross the network unencrypted`,
      url,
      {
        path,
        hint:
          path.length > 0
            ? `use https://${host} (with ca: for a private CA), or set insecure: true if you accept that`
            : `use https://${host} (with ca: for a private CA), or write registry: {url: ${origin}, insecure: true} if you accept that`,
      },
    )
    return undefined
  }
  return { url: origin, host }
}

const registryInput = z.union([z.string().meta({ pattern: URL_PATTERN }), registryObject], {
  error:
    'expected a registry URL (https://host[:port]) or a mapping with url, prefix, auth, ca, insecure, cache',
})

/** `registry:`: a URL, or a mapping (see the keys' descriptions). */
export const registrySchema = registryInput
  .transform((r, ctx): ParsedRegistry => {
    const obj = typeof r === 'string' ? undefined : r
    const url = typeof r === 'string' ? r : r.url
    const insecure = obj?.insecure ?? false
    const checked = checkUrl(ctx as Ctx, url, obj ? ['url'] : [], insecure)
    if (obj?.prefix !== undefined) {
      const problem = repositoryPathProblem(obj.prefix, 'the prefix')
      if (problem) report(ctx as Ctx, problem.message, obj.prefix, { path: ['prefix'], hint: problem.hint })
    }
    return {
      url: checked?.url ?? url,
      host: checked?.host ?? '',
      ...(obj?.prefix !== undefined ? { prefix: obj.prefix } : {}),
      auth: obj?.auth ?? { kind: 'auto' },
      ...(obj?.ca !== undefined ? { ca: obj.ca } : {}),
      insecure,
      cache: obj?.cache ?? { from: false, to: false },
    }
  })
  .describe(
    'A registry Grail pushes images to and pulls them from: `https://host[:port]`, or a mapping with `url`, `prefix`, `auth`, `ca`, `insecure` and `cache`. See docs/registry.md.',
  )
