import { GrailError } from '../../errors.js'
import type { Digest } from '../digest.js'
import type { RegistryRef } from './types.js'

/** distribution's repository grammar: path components of lower-case alphanumerics and separators */
const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*'
const REPOSITORY_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`)
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/
/** a DNS name or IPv4 address, or a bracketed IPv6 address, then an optional port */
const HOST_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/
/** distribution limits a full name (host and repository) to 255 characters */
const MAX_NAME = 255

function invalid(s: string, why: string, hint?: string): GrailError {
  return new GrailError('REGISTRY_REF_INVALID', `image reference "${s}": ${why}`, {
    hint:
      hint ??
      'expected host[:port]/repository[:tag][@sha256:<64 hex>], e.g. registry.example.com/team/web:1.2',
  })
}

export function isValidRepository(name: string): boolean {
  return name.length <= MAX_NAME && REPOSITORY_RE.test(name)
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag)
}

/** Throws REGISTRY_REF_INVALID unless `name` is a repository path distribution accepts. */
export function checkRepository(name: string): string {
  if (!isValidRepository(name)) {
    throw invalid(
      name,
      'is not a valid repository name',
      'a repository is lower-case path components (a-z, 0-9, separated by ".", "_", "__" or "-") joined by "/"',
    )
  }
  return name
}

/** Throws REGISTRY_REF_INVALID unless `ref` is a tag or a sha256 digest (what may follow /manifests/). */
export function checkManifestReference(ref: string): string {
  if (!TAG_RE.test(ref) && !DIGEST_RE.test(ref)) {
    throw invalid(ref, 'is neither a tag nor a sha256 digest')
  }
  return ref
}

/**
 * Parses `host[:port]/repo[:tag][@sha256:hex]`. The first component must name a registry host (it has a
 * "." or a ":", or is "localhost"): Grail never defaults to Docker Hub.
 */
export function parseReference(s: string): RegistryRef {
  if (s.length === 0) throw invalid(s, 'is empty')
  if (/\s/.test(s)) throw invalid(s, 'contains white space')
  let rest = s
  let digest: Digest | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    const d = rest.slice(at + 1)
    if (!DIGEST_RE.test(d))
      throw invalid(s, `"${d}" is not a sha256 digest (sha256: and 64 lower-case hex characters)`)
    digest = d as Digest
    rest = rest.slice(0, at)
  }
  const slash = rest.indexOf('/')
  const first = slash < 0 ? rest : rest.slice(0, slash)
  if (slash < 0 || !(first.includes('.') || first.includes(':') || first === 'localhost')) {
    throw invalid(
      s,
      'has no registry host',
      'Grail needs an explicit registry host as the first component (host[:port]/repository, e.g. registry.example.com/library/debian): it never defaults to Docker Hub; for Docker Hub write docker.io/library/NAME',
    )
  }
  if (!HOST_RE.test(first)) throw invalid(s, `"${first}" is not a valid registry host`)
  const port = /:(\d+)$/.exec(first)?.[1]
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535))
    throw invalid(s, `port ${port} is out of range`)
  let path = rest.slice(slash + 1)
  let tag: string | undefined
  const colon = path.lastIndexOf(':')
  if (colon >= 0) {
    tag = path.slice(colon + 1)
    path = path.slice(0, colon)
    if (!TAG_RE.test(tag))
      throw invalid(
        s,
        `"${tag}" is not a valid tag (A-Z a-z 0-9 _ . -, at most 128, not starting with . or -)`,
      )
  }
  if (!REPOSITORY_RE.test(path)) {
    throw invalid(
      s,
      `"${path}" is not a valid repository name`,
      'a repository is lower-case path components (a-z, 0-9, separated by ".", "_", "__" or "-") joined by "/"',
    )
  }
  const registry = first.toLowerCase()
  if (registry.length + 1 + path.length > MAX_NAME)
    throw invalid(s, `the name is longer than ${MAX_NAME} characters`)
  const ref: RegistryRef = { registry, repository: path }
  if (tag !== undefined) ref.tag = tag
  if (digest !== undefined) ref.digest = digest
  return ref
}

/** The reference's canonical text: `host/repo[:tag][@digest]`. */
export function formatReference(ref: RegistryRef): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`
}
