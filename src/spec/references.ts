/**
 * Cross-references the schema cannot see: a service's image, an image's base image, an environment's
 * service overrides. Runs on the raw document so these problems are reported together with the others.
 */
import type { RawProblem } from './problems.js'
import { NAME_PATTERN, isPlainObject } from './schema-common.js'
import { didYouMean } from './suggest.js'

function entries(v: unknown): Array<[string, Record<string, unknown>]> {
  if (!isPlainObject(v)) return []
  return Object.entries(v).filter((e): e is [string, Record<string, unknown>] => isPlainObject(e[1]))
}

function unknownName(
  what: string,
  name: string,
  known: string[],
  section: string,
): Pick<RawProblem, 'message' | 'hint'> {
  return {
    message: `unknown ${what} "${name}"`,
    hint:
      didYouMean(name, known) ??
      (known.length ? `${section} in this spec: ${known.join(', ')}` : `define it under ${section}:`),
  }
}

/** The image an image's `base` names (`image:NAME` or `{image: NAME}`), with the path of the name. */
function baseImage(image: Record<string, unknown>): { name: string; path: PropertyKey[] } | undefined {
  const base = image.base
  if (typeof base === 'string' && base.startsWith('image:')) return { name: base.slice(6), path: ['base'] }
  if (isPlainObject(base) && typeof base.image === 'string')
    return { name: base.image, path: ['base', 'image'] }
  return undefined
}

function checkAncestry(images: Array<[string, Record<string, unknown>]>, out: RawProblem[]): void {
  const names = images.map(([n]) => n)
  const parent = new Map<string, string>()
  for (const [name, image] of images) {
    const ref = baseImage(image)
    if (!ref || !NAME_PATTERN.test(ref.name)) continue
    const path = ['images', name, ...ref.path]
    if (ref.name === name) {
      out.push({
        path,
        at: 'value',
        message: `image "${name}" cannot be its own base`,
        hint: 'use another image, or scratch',
      })
    } else if (!names.includes(ref.name)) {
      out.push({ path, at: 'value', ...unknownName('image', ref.name, names, 'images') })
    } else parent.set(name, ref.name)
  }
  const reported = new Set<string>()
  for (const start of parent.keys()) {
    const chain = [start]
    let cur = parent.get(start)
    while (cur !== undefined && !chain.includes(cur)) {
      chain.push(cur)
      cur = parent.get(cur)
    }
    if (cur === undefined || cur !== start || reported.has(start)) continue
    for (const n of chain) reported.add(n)
    out.push({
      path: ['images', start, 'base'],
      at: 'value',
      message: `image ancestry cycle: ${[...chain, start].join(' → ')}`,
      hint: 'one of these images must start from scratch, debian, an OCI layout or a rootfs',
    })
  }
}

/** Problems with names that point at other parts of the spec. */
export function checkReferences(raw: unknown): RawProblem[] {
  if (!isPlainObject(raw)) return []
  const out: RawProblem[] = []
  const images = entries(raw.images)
  const imageNames = images.map(([n]) => n)
  const services = isPlainObject(raw.services) ? Object.keys(raw.services) : []
  checkAncestry(images, out)
  const checkImage = (svc: Record<string, unknown>, path: PropertyKey[]) => {
    const image = svc.image
    if (typeof image !== 'string' || !NAME_PATTERN.test(image) || imageNames.includes(image)) return
    out.push({ path: [...path, 'image'], at: 'value', ...unknownName('image', image, imageNames, 'images') })
  }
  for (const [name, svc] of entries(raw.services)) checkImage(svc, ['services', name])
  for (const [env, spec] of entries(raw.environments)) {
    for (const [name, override] of entries(spec.services)) {
      const path = ['environments', env, 'services', name]
      if (!services.includes(name))
        out.push({ path, at: 'key', ...unknownName('service', name, services, 'services') })
      else checkImage(override, path)
    }
  }
  checkPatchDeploy(raw, out)
  return out
}

/** `policies.patch.deploy` names environments of this spec (`local` when it declares none). */
function checkPatchDeploy(raw: Record<string, unknown>, out: RawProblem[]): void {
  const policies = raw.policies
  if (!isPlainObject(policies) || !isPlainObject(policies.patch)) return
  const deploy = policies.patch.deploy
  if (!Array.isArray(deploy)) return
  const envs = raw.environments === undefined ? ['local'] : entries(raw.environments).map(([n]) => n)
  for (const [i, env] of deploy.entries()) {
    if (typeof env !== 'string' || !NAME_PATTERN.test(env) || envs.includes(env)) continue
    out.push({
      path: ['policies', 'patch', 'deploy', i],
      at: 'value',
      ...unknownName('environment', env, envs, 'environments'),
    })
  }
}
