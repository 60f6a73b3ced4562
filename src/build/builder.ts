import { relative } from 'node:path'
import { GrailError } from '../errors.js'
import type { Digest } from '../oci/digest.js'
import { reusableBlobs } from '../oci/blob-check.js'
import type { OciStore } from '../oci/store.js'
import type { Manifest } from '../oci/types.js'
import { MEDIA_LAYER_GZIP } from '../oci/media-types.js'
import type { ImageSpec, Project } from '../spec/types.js'
import type { BuildInputs, ImageRecord } from '../state/index.js'
import {
  appendEvent,
  findImageByKey,
  getCachedLayer,
  putCachedLayer,
  recordImageVersion,
} from '../state/index.js'
import type { PlannedBase } from './base.js'
import { planBase, resolveBase } from './base.js'
import { applyConfigStep, describeStep, isConfigStep } from './config-steps.js'
import type { CopyEntry } from './copy-step.js'
import { collectCopy, copyInputsDigest } from './copy-step.js'
import type { BuildEnv, ImageState, LayerDesc } from './env.js'
import { deriveKey } from './keys.js'

/** Progress of a build, reported as it happens; the CLI renders these, the engine never prints. */
export type BuildEvent =
  | { type: 'image-start'; image: string; steps: number }
  | { type: 'step-start'; image: string; index: number; total: number; label: string }
  | {
      type: 'step-done'
      image: string
      index: number
      total: number
      label: string
      cached: boolean
      ms: number
    }
  | { type: 'step-failed'; image: string; index: number; total: number; label: string; ms: number }
  | { type: 'log'; image: string; line: string }
  /** another process builds this image: this build waits for it (and then usually finds its version) */
  | { type: 'waiting'; image: string; held: string }

export interface StepReport {
  label: string
  key: string
  cached: boolean
  ms: number
  layer?: Digest
}

export interface BuiltImage {
  name: string
  version: number
  digest: Digest
  buildKey: string
  /** the cache key of the image's base (what `--cache-to` maps to the base's layers) */
  baseKey?: string
  size: number
  /** true when nothing changed and no new version was made */
  unchanged: boolean
  /** unchanged, but missing or corrupt blobs of the version had to be built again */
  restored?: boolean
  record: ImageRecord
  steps: StepReport[]
}

/** A step with its cache key worked out up front (cheap), before any layer work. */
export interface KeyedStep {
  label: string
  key: string
  step: ImageSpec['steps'][number]
  copyEntries?: CopyEntry[]
}

export const DEFAULT_EPOCH = 1

/** Labels every built image carries: the image's name and its project's */
export const IMAGE_NAME_LABEL = 'dev.grail.image.name'
export const IMAGE_PROJECT_LABEL = 'dev.grail.image.project'

/**
 * Every blob of a stored image: manifest, config, layers. A manifest that is missing or does not hash
 * right is deleted (a rebuild writes it again) and stands alone, so the caller sees the image unsound.
 */
export async function imageBlobs(store: OciStore, digest: Digest): Promise<Digest[]> {
  try {
    const manifest = await store.readJson<Manifest>(digest)
    return [digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]
  } catch (err) {
    if (!(err instanceof GrailError) || (err.code !== 'BLOB_MISSING' && err.code !== 'BLOB_CORRUPT'))
      throw err
    return [digest]
  }
}

/** Works out every step's key: the base key, then each step chained onto its parent's. */
async function keySteps(image: ImageSpec, baseKey: string): Promise<KeyedStep[]> {
  const out: KeyedStep[] = []
  let key = baseKey
  for (const [i, step] of image.steps.entries()) {
    const where = `images.${image.name}.steps[${i}]`
    let part: unknown = step
    let copyEntries: CopyEntry[] | undefined
    if (step.kind === 'copy') {
      copyEntries = await collectCopy(step, image.context, where)
      part = { kind: 'copy', to: step.to, inputs: copyInputsDigest(copyEntries) }
    }
    key = deriveKey(key, part)
    out.push({ label: describeStep(step), key, step, copyEntries })
  }
  return out
}

/** What an image's build key is made of, worked out without building anything. */
export interface ImageKeys {
  buildKey: string
  base: PlannedBase
  steps: KeyedStep[]
  inputs: BuildInputs
}

/**
 * The build key of an image as its spec and build context stand now, and the inputs behind it: cheap (a
 * hash of the base's definition and of every copied file), so `plan` can tell which version the spec
 * builds, or that it needs a build, without running a step.
 */
export async function imageKeys(env: BuildEnv, image: ImageSpec): Promise<ImageKeys> {
  const base = await planBase(image, env)
  const steps = await keySteps(image, base.key)
  const rel = (p: string): string => relative(image.context, p) || '.'
  const inputs: BuildInputs = {
    base: { key: base.key, description: base.description },
    steps: steps.map((s) => ({
      key: s.key,
      label: s.label,
      ...(s.copyEntries
        ? {
            sources: Object.fromEntries(
              s.copyEntries.map((e) => [
                e.path,
                {
                  ...(e.source !== undefined ? { from: rel(e.source) } : {}),
                  hash: `${e.type}:${e.mode.toString(8)}:${e.uid}:${e.gid}:${e.sha256 ?? e.linkname ?? ''}`,
                },
              ]),
            ),
          }
        : {}),
    })),
  }
  return { buildKey: steps.at(-1)?.key ?? base.key, base, steps, inputs }
}

/**
 * The catalog version the spec of `image` builds now, with the keys behind it. When the parent's current
 * version was revoked without `--cascade`, a version of this image already built on it stays what the
 * spec means (nothing new is built on a revoked base); otherwise the keys are those of a build on the
 * parent's newest active version.
 */
export async function keyedVersion(
  env: BuildEnv,
  image: ImageSpec,
): Promise<{ keys: ImageKeys; record?: ImageRecord; onRevokedParent: boolean }> {
  const parent =
    image.base.kind === 'image' && image.base.version === undefined
      ? env.current?.get(image.base.image)
      : undefined
  if (parent?.status === 'revoked') {
    const keys = await imageKeys({ ...env, revokedParent: true }, image)
    const record = findImageByKey(env.db, image.name, keys.buildKey)
    if (record) return { keys, record, onRevokedParent: true }
  }
  const keys = await imageKeys(env, image)
  return { keys, record: findImageByKey(env.db, image.name, keys.buildKey), onRevokedParent: false }
}

/**
 * Builds one image. When its build key (base + every step + every input) matches a version already in the
 * catalog, nothing is built and that version is returned as unchanged. Otherwise each step reuses the
 * cached layer for its key or produces one, and a new version is recorded.
 */
export async function buildImage(
  env: BuildEnv,
  image: ImageSpec,
  opts: {
    onEvent?: (e: BuildEvent) => void
    gitCommit?: () => Promise<string | null>
    record?: boolean
  } = {},
): Promise<BuiltImage> {
  const emit = opts.onEvent ?? (() => {})
  const envFor: BuildEnv = {
    ...env,
    log: (line) => emit({ type: 'log', image: image.name, line }),
    ...(image.resources ? { resources: image.resources } : {}),
  }
  const found = await keyedVersion(envFor, image)
  const record = opts.record ?? true

  let unsound = false
  if (!env.noCache && !env.refresh && record) {
    const existing = found.record
    const { steps, buildKey } = found.keys
    // every blob of the version must be there and hash right, not just its manifest: a missing or corrupt
    // one makes this a build, whose cached steps rebuild what is gone (the same bytes, so the same version)
    const sound = existing && (await reusableBlobs(env.store, await imageBlobs(env.store, existing.digest)))
    unsound = existing !== undefined && !sound
    if (existing && sound) {
      return {
        name: image.name,
        version: existing.version,
        digest: existing.digest,
        buildKey,
        baseKey: found.keys.base.key,
        size: existing.size,
        unchanged: true,
        record: existing,
        steps: steps.map((s) => ({
          label: s.label,
          key: s.key,
          cached: true,
          ms: 0,
          layer: getCachedLayer(env.db, s.key)?.digest,
        })),
      }
    }
  }

  // a build runs on the parent's newest active version, never on a revoked one
  const {
    base: planned,
    steps,
    buildKey,
    inputs,
  } = found.onRevokedParent ? await imageKeys(envFor, image) : found.keys
  // what only a build that runs loads: an unchanged image (a no-op build) returned above needs none of it
  const [{ imageFileManifest }, { buildCopyLayer }, { syncIndex, writeImage }, { runStepLayer }] =
    await Promise.all([
      import('../oci/file-manifest.js'),
      import('./copy-layer.js'),
      import('./image-writer.js'),
      import('./run-step.js'),
    ])
  const total = steps.length + 1
  emit({ type: 'image-start', image: image.name, steps: total })
  const reports: StepReport[] = []
  const timed = async <T>(index: number, label: string, fn: () => Promise<{ value: T; cached: boolean }>) => {
    emit({ type: 'step-start', image: image.name, index, total, label })
    const t0 = performance.now()
    let result: { value: T; cached: boolean }
    try {
      result = await fn()
    } catch (err) {
      emit({ type: 'step-failed', image: image.name, index, total, label, ms: performance.now() - t0 })
      throw err
    }
    const { value, cached } = result
    const ms = performance.now() - t0
    emit({ type: 'step-done', image: image.name, index, total, label, cached, ms })
    return { value, cached, ms }
  }

  const base = await timed(0, `base ${planned.description}`, () =>
    resolveBase(planned, envFor, image.name).then((r) => ({ value: r.state, cached: r.cached })),
  )
  reports.push({ label: `base ${planned.description}`, key: planned.key, cached: base.cached, ms: base.ms })
  let state: ImageState = base.value

  for (const [i, ks] of steps.entries()) {
    const step = ks.step
    if (isConfigStep(step)) {
      state = { ...state, key: ks.key, config: applyConfigStep(state.config, step) }
      reports.push({ label: ks.label, key: ks.key, cached: true, ms: 0 })
      continue
    }
    const res = await timed(i + 1, ks.label, async () => {
      const hit = env.noCache || env.refresh ? undefined : getCachedLayer(env.db, ks.key)
      if (hit && (await reusableBlobs(env.store, [hit.digest]))) {
        return { value: { mediaType: MEDIA_LAYER_GZIP, ...hit } as LayerDesc, cached: true }
      }
      // the shared cache (`--cache-from`): a hit's blob is in the store, verified, when it answers
      const remote = env.noCache || env.refresh ? undefined : await env.remoteCache?.layer(image.name, ks.key)
      if (remote) {
        putCachedLayer(env.db, ks.key, remote)
        return { value: remote, cached: true }
      }
      const layer =
        step.kind === 'copy'
          ? await buildCopyLayer(envFor, state, ks.copyEntries ?? [])
          : await runStepLayer(envFor, state, step)
      if (!env.noCache) putCachedLayer(env.db, ks.key, layer)
      return { value: layer, cached: false }
    })
    state = {
      ...state,
      key: ks.key,
      layers: [...state.layers, res.value],
      config: {
        ...state.config,
        history: [...(state.config.history ?? []), { created_by: `grail: ${ks.label}` }],
      },
    }
    reports.push({ label: ks.label, key: ks.key, cached: res.cached, ms: res.ms, layer: res.value.digest })
  }

  // what a registry's reader (and `grail pull`) learns of where the image came from: names, never a
  // time, a path or a commit, so the digest stays a function of the inputs
  state = {
    ...state,
    config: {
      ...state.config,
      config: {
        ...state.config.config,
        Labels: {
          ...state.config.config.Labels,
          [IMAGE_NAME_LABEL]: image.name,
          ...(env.project !== undefined ? { [IMAGE_PROJECT_LABEL]: env.project } : {}),
        },
      },
    },
  }
  const written = await writeImage(env.store, state, env.epoch)
  const fields = {
    name: image.name,
    digest: written.manifest.digest,
    configDigest: written.config.digest,
    buildKey,
    parentDigest: state.parentDigest,
    base: image.base,
    gitCommit: opts.gitCommit ? await opts.gitCommit() : null,
    createdAt: new Date().toISOString(),
    size: written.size,
    packages: state.packages,
  }
  if (!record) {
    return {
      ...fields,
      baseKey: planned.key,
      version: 0,
      unchanged: false,
      record: { ...fields, version: 0, status: 'active', statusReason: null },
      steps: reports,
    }
  }
  {
    // refreshed, or rebuilt because a blob was missing or corrupt, to the same content: the version
    // there is still the answer
    const same = findImageByKey(env.db, image.name, buildKey)
    if (same && same.digest === fields.digest) {
      return {
        name: same.name,
        version: same.version,
        digest: same.digest,
        buildKey,
        baseKey: planned.key,
        size: same.size,
        unchanged: true,
        ...(unsound ? { restored: true } : {}),
        record: same,
        steps: reports,
      }
    }
  }
  // the file manifest drift compares instances with, for every image the catalog records
  await imageFileManifest(env.home, env.store, written.manifest.digest)
  const { record: rec, created } = recordImageVersion(env.db, fields, inputs)
  if (created) {
    appendEvent(env.db, 'image.built', `${rec.name}@${rec.version}`, {
      digest: rec.digest,
      buildKey,
      size: rec.size,
    })
    await syncIndex(env.db, env.store)
  }
  return {
    name: rec.name,
    version: rec.version,
    digest: rec.digest,
    buildKey,
    baseKey: planned.key,
    size: rec.size,
    // a build that gave a digest the catalog has already keeps that version: one version per digest
    unchanged: !created,
    record: rec,
    steps: reports,
  }
}

/**
 * Orders images so that every image comes after the project image it is based on; the requested names
 * pull in their ancestors. A cycle or an unknown name is the user's error.
 */
export function buildOrder(project: Project, names?: string[]): ImageSpec[] {
  const wanted = names && names.length > 0 ? names : Object.keys(project.images)
  const order: ImageSpec[] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (name: string, chain: string[]) => {
    const image = project.images[name]
    if (!image) {
      const known = Object.keys(project.images)
      throw new GrailError('UNKNOWN_IMAGE', `${project.file}: no image named "${name}"`, {
        hint: known.length ? `images in this project: ${known.join(', ')}` : 'add an entry under `images:`',
      })
    }
    if (state.get(name) === 'done') return
    if (state.get(name) === 'visiting') {
      throw new GrailError(
        'IMAGE_CYCLE',
        `${project.file}: images are based on each other in a cycle: ${[...chain, name].join(' → ')}`,
        {
          hint: 'an image cannot be its own ancestor; break the cycle in `base:`',
        },
      )
    }
    state.set(name, 'visiting')
    if (image.base.kind === 'image' && project.images[image.base.image])
      visit(image.base.image, [...chain, name])
    state.set(name, 'done')
    order.push(image)
  }
  for (const name of wanted) visit(name, [])
  return order
}
