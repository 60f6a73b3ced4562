import type { Digest } from '../oci/digest.js'
import type { TarEntry } from '../oci/tar/index.js'
import { listLayer } from '../oci/tar/index.js'
import type { ImageConfig, Manifest } from '../oci/types.js'
import type { OciStore } from '../oci/store.js'

export interface FileDifference {
  /** 0-based layer index and the step that made it */
  layer: number
  step: string
  path: string
  /** what differs: content, mode, owner, mtime, type, link, size, only-in-first, only-in-second */
  what: string[]
}

export interface VerifyReport {
  image: string
  reproducible: boolean
  first: Digest
  second: Digest
  files: FileDifference[]
  /** top-level keys of the image config that differ */
  config: string[]
}

type Listed = TarEntry & { sha256?: string }

function compareEntries(a: Listed, b: Listed): string[] {
  const what: string[] = []
  if (a.type !== b.type) what.push('type')
  if (a.sha256 !== b.sha256 || a.size !== b.size) what.push('content')
  if (a.mode !== b.mode) what.push('mode')
  if (a.uid !== b.uid || a.gid !== b.gid) what.push('owner')
  if (a.mtime !== b.mtime) what.push('mtime')
  if ((a.linkname ?? '') !== (b.linkname ?? '')) what.push('link')
  return what
}

/** Names the layer of each index the way the build reported it, from the config's history. */
function layerLabels(config: ImageConfig): string[] {
  return (config.history ?? [])
    .filter((h) => !h.empty_layer)
    .map((h) => (h.created_by ?? '').replace(/^grail: /, ''))
}

/**
 * Compares two builds of the same image file by file: every layer whose digest differs is listed and each
 * path that differs in content, metadata or presence is named, with the step that produced it.
 */
export async function compareImages(
  store: OciStore,
  image: string,
  first: Digest,
  second: Digest,
): Promise<VerifyReport> {
  const report: VerifyReport = { image, reproducible: first === second, first, second, files: [], config: [] }
  if (first === second) return report
  const [ma, mb] = [await store.readJson<Manifest>(first), await store.readJson<Manifest>(second)]
  const [ca, cb] = [
    await store.readJson<ImageConfig>(ma.config.digest),
    await store.readJson<ImageConfig>(mb.config.digest),
  ]
  const labels = layerLabels(ca)
  const count = Math.max(ma.layers.length, mb.layers.length)
  for (let i = 0; i < count; i++) {
    const la = ma.layers[i]
    const lb = mb.layers[i]
    if (la && lb && la.digest === lb.digest) continue
    const ea = la ? await listLayer(store.blobPath(la.digest)) : new Map<string, Listed>()
    const eb = lb ? await listLayer(store.blobPath(lb.digest)) : new Map<string, Listed>()
    const step = labels[i] ?? `layer ${i}`
    for (const path of [...new Set([...ea.keys(), ...eb.keys()])].sort()) {
      const a = ea.get(path)
      const b = eb.get(path)
      const what = a && b ? compareEntries(a, b) : [a ? 'only-in-first' : 'only-in-second']
      if (what.length > 0) report.files.push({ layer: i, step, path: `/${path}`, what })
    }
  }
  const keys = new Set([...Object.keys(ca), ...Object.keys(cb)])
  for (const k of keys) {
    if (k === 'rootfs') continue
    const va = JSON.stringify((ca as unknown as Record<string, unknown>)[k])
    const vb = JSON.stringify((cb as unknown as Record<string, unknown>)[k])
    if (va !== vb) report.config.push(k)
  }
  return report
}
