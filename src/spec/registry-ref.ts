/**
 * The distribution reference grammar as the spec checks it: `host[:port]/repo/path[:tag][@sha256:…]`,
 * the repository path of a `registry.prefix`, and which hosts are loopback. Pure string checks, so the
 * spec loads without the registry client; the client parses the same grammar when it connects.
 */

/** One repository path component: lowercase alphanumerics, joined by `.`, `_`, `__` or runs of `-`. */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
/** `host`, `host:port`, `[v6]:port`: a component with a dot or a port, or `localhost` (docker's rule). */
const DOMAIN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
const DIGEST = /^sha256:[0-9a-f]{64}$/
/** distribution's limit on a repository name, host excluded */
export const REPOSITORY_MAX = 255

/** Why a reference or path was refused: a message and a hint, neither of which repeats a credential. */
export interface RefProblem {
  message: string
  hint: string
}

export interface ParsedRef {
  /** `host[:port]`, lower case */
  host: string
  repository: string
  tag?: string
  digest?: string
}

/** Problems of a repository path (`team/web`), or undefined when it is valid. */
export function repositoryPathProblem(path: string, what: string): RefProblem | undefined {
  const parts = path.split('/')
  if (path !== '' && parts.every((p) => PATH_COMPONENT.test(p))) {
    if (path.length <= REPOSITORY_MAX) return undefined
    return {
      message: `${what} is at most ${REPOSITORY_MAX} characters, this one has ${path.length}`,
      hint: 'use a shorter repository path',
    }
  }
  const near = path
    .toLowerCase()
    .split('/')
    .map((p) =>
      p
        .replace(/[^a-z0-9._-]+/g, '-')
        .replace(/^[._-]+|[._-]+$/g, '')
        .replace(/[._]{2,}/g, '_'),
    )
    .filter((p) => p !== '')
    .join('/')
  const shape =
    'lowercase letters and digits, separated by ".", "_", "__" or "-" within a component and "/" between components'
  return {
    message: `${what} "${path}" is not a repository path (${shape})`,
    hint: near !== '' && near !== path ? `try "${near}"` : 'for example "myteam/web"',
  }
}

/** True when `host` (`host[:port]`, as a URL gives it) is this machine: 127.0.0.0/8, ::1 or localhost. */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '')
  if (name === 'localhost' || name === '[::1]') return true
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
}

/**
 * Parses `host[:port]/repo[:tag][@sha256:…]`, or says why not. A reference without a registry host is
 * refused rather than taken for Docker Hub; one that looks like it carries `user:password@` is refused
 * without repeating it.
 */
export function parseImageRef(ref: string): ParsedRef | RefProblem {
  const at = ref.indexOf('@')
  const name = at < 0 ? ref : ref.slice(0, at)
  const digest = at < 0 ? undefined : ref.slice(at + 1)
  if (digest !== undefined && !digest.startsWith('sha256:')) {
    // `user:pass@host/repo`: whatever is before the @ may be a password, so none of it is shown
    return {
      message:
        'a base reference has an "@" that is not followed by a sha256 digest; credentials never go in a reference',
      hint: 'write host/repo:tag or host/repo@sha256:<64 hex>, and give credentials with registry.auth (see docs/registry.md)',
    }
  }
  if (digest !== undefined && !DIGEST.test(digest)) {
    return {
      message: `"${digest}" is not a sha256 digest (sha256: and 64 lowercase hex digits)`,
      hint: 'copy the digest exactly, e.g. from `skopeo inspect docker://host/repo:tag`',
    }
  }
  const slash = name.indexOf('/')
  const first = slash < 0 ? name : name.slice(0, slash)
  const isHost = first === 'localhost' || first.includes('.') || first.includes(':')
  if (slash < 0 || !isHost) {
    return {
      message: `"${ref}" names no registry host; Grail never assumes Docker Hub`,
      hint: `write the host first, e.g. "registry.example.com/${ref}" (Docker Hub: "registry-1.docker.io/${name.includes('/') ? ref : `library/${ref}`}")`,
    }
  }
  if (!DOMAIN.test(first)) {
    return {
      message: `"${first}" is not a registry host (host or host:port)`,
      hint: 'for example "registry.example.com" or "127.0.0.1:5000"',
    }
  }
  let repository = name.slice(slash + 1)
  let tag: string | undefined
  const colon = repository.lastIndexOf(':')
  if (colon >= 0) {
    tag = repository.slice(colon + 1)
    repository = repository.slice(0, colon)
    if (!TAG.test(tag)) {
      return {
        message: `"${tag}" is not a tag (letters, digits, "_", "." and "-", at most 128, not starting with "." or "-")`,
        hint: 'for example ":bookworm" or ":1.2.3"',
      }
    }
  }
  const pathProblem = repositoryPathProblem(repository, 'the repository')
  if (pathProblem) return pathProblem
  return {
    host: first.toLowerCase(),
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  }
}

/** The canonical text of a parsed reference: lower-case host; `:latest` when it has neither tag nor digest. */
export function formatImageRef(r: ParsedRef): string {
  const tag = r.tag ?? (r.digest === undefined ? 'latest' : undefined)
  return `${r.host}/${r.repository}${tag !== undefined ? `:${tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`
}
