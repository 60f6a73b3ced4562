import { join, relative } from 'node:path'
import type { GrailHome } from '../home.js'
import type { OciStore } from '../oci/store.js'
import type { Project } from '../spec/types.js'
import type { BuildInputs, Db, ImageRecord } from '../state/index.js'
import { buildInputsOf } from '../state/index.js'
import { buildOrder, DEFAULT_EPOCH, keyedVersion } from './builder.js'
import type { BuildEnv } from './env.js'
import type { RegistryBases } from './registry-base.js'

/** What an image of the spec builds now, found without building: its version, or why it needs a build. */
export type CurrentImage =
  | { name: string; built: true; buildKey: string; record: ImageRecord }
  | {
      name: string
      built: false
      /** the key the build would have, unless a parent image needs a build first */
      buildKey: string | null
      inputs?: BuildInputs
      /** the project image this one is based on, when that one needs a build first */
      parent?: string
    }

/**
 * For each named image (and the project images they are based on), the catalog version whose build key
 * equals what the spec and the build context give now. Costs what a build's key check costs (the copy
 * sources are hashed, nothing runs), so `plan` can do it every time.
 */
export async function currentImages(
  env: { project: Project; home: GrailHome; db: Db; store: OciStore },
  names: string[],
): Promise<Map<string, CurrentImage>> {
  const out = new Map<string, CurrentImage>()
  const known = new Map<string, ImageRecord>()
  const order = buildOrder(env.project, names)
  // a registry base's key is its manifest digest: the lock's pin (no network), else the tag resolved
  let registry: RegistryBases | undefined
  if (order.some((i) => i.base.kind === 'registry')) {
    const [{ registryBases }, { readLock }] = await Promise.all([
      import('./registry-base.js'),
      import('../lifecycle/lock.js'),
    ])
    registry = registryBases({ project: env.project, lock: await readLock(env.project) })
  }
  try {
    await keyEach(env, order, out, known, registry)
  } finally {
    await registry?.close()
  }
  return out
}

async function keyEach(
  env: { project: Project; home: GrailHome; db: Db; store: OciStore },
  order: ReturnType<typeof buildOrder>,
  out: Map<string, CurrentImage>,
  known: Map<string, ImageRecord>,
  registry: RegistryBases | undefined,
): Promise<void> {
  for (const image of order) {
    const parent = image.base.kind === 'image' && image.base.version === undefined ? image.base.image : null
    const parentNow = parent === null ? undefined : out.get(parent)
    if (parentNow !== undefined && !parentNow.built) {
      out.set(image.name, { name: image.name, built: false, buildKey: null, parent: parentNow.name })
      continue
    }
    const build: BuildEnv = {
      ...(registry ? { registry } : {}),
      home: env.home,
      store: env.store,
      db: env.db,
      epoch: image.sourceDateEpoch ?? DEFAULT_EPOCH,
      noCache: false,
      log: () => {},
      current: known,
    }
    const { keys, record } = await keyedVersion(build, image)
    if (record) {
      known.set(image.name, record)
      out.set(image.name, { name: image.name, built: true, buildKey: keys.buildKey, record })
    } else
      out.set(image.name, { name: image.name, built: false, buildKey: keys.buildKey, inputs: keys.inputs })
  }
}

const MAX_NAMED = 5

function named(list: string[]): string {
  const shown = list.slice(0, MAX_NAMED).join(', ')
  return list.length > MAX_NAMED ? `${shown} and ${list.length - MAX_NAMED} more` : shown
}

/** Source files (relative to the project) whose entries differ between two recorded copy steps. */
function changedSources(
  project: Project,
  context: string,
  was: NonNullable<BuildInputs['steps'][number]['sources']>,
  now: NonNullable<BuildInputs['steps'][number]['sources']>,
): string[] {
  const out: string[] = []
  const name = (path: string): string => {
    const from = now[path]?.from ?? was[path]?.from
    return from === undefined ? path : relative(project.dir, join(context, from))
  }
  for (const path of new Set([...Object.keys(was), ...Object.keys(now)]))
    if (was[path]?.hash !== now[path]?.hash) out.push(name(path))
  return out.sort()
}

/**
 * Why an image needs a build, against the version `since` (what runs, or the newest): the changed source
 * files where the build of `since` recorded its inputs, else the base or the first step that changed.
 */
export function whatChanged(
  project: Project,
  db: Db,
  current: Extract<CurrentImage, { built: false }>,
  since: ImageRecord | undefined,
): string {
  if (current.parent !== undefined) return `built on image ${current.parent}, which needs a build`
  if (since === undefined) return 'not built yet'
  const v = `v${since.version}`
  const was = buildInputsOf(db, since.name, since.version)
  const now = current.inputs
  if (was === undefined || now === undefined) return `the spec or its sources changed since ${v}`
  const context = project.images[current.name]?.context ?? project.dir
  const parts: string[] = []
  if (was.base.key !== now.base.key)
    parts.push(
      was.base.description === now.base.description
        ? `base ${now.base.description} changed since ${v}`
        : `base changed since ${v} (${was.base.description} → ${now.base.description})`,
    )
  const files = new Set<string>()
  let definition: string | null = null
  for (const [i, step] of now.steps.entries()) {
    const old = was.steps[i]
    if (old !== undefined && old.label === step.label && old.sources && step.sources) {
      for (const f of changedSources(project, context, old.sources, step.sources)) files.add(f)
    }
    const parentSame =
      i === 0 ? was.base.key === now.base.key : was.steps[i - 1]?.key === now.steps[i - 1]?.key
    // the first step whose key changes while its parent's did not is where the definition changed
    if (
      definition === null &&
      parentSame &&
      old?.key !== step.key &&
      !(step.sources && old?.label === step.label)
    )
      definition = `images.${current.name}.steps[${i}] (${step.label})`
  }
  if (files.size > 0) parts.push(`sources changed since ${v} (${named([...files].sort())})`)
  if (definition === null && was.steps.length > now.steps.length)
    definition = `images.${current.name}.steps: ${was.steps.length - now.steps.length} fewer`
  if (definition !== null) parts.push(`the spec changed since ${v}: ${definition}`)
  return parts.length > 0 ? parts.join(', ') : `the spec or its sources changed since ${v}`
}
