// A tiny OCI image layout written directly (one gzip layer of the given files, a config, a manifest, an
// index with one tagged entry): for tests that need an image some client other than Grail pushes.
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { runCommand } from '../../src/util/exec.js'

export interface OciLayoutImage {
  /** The layout dir; `oci:${dir}:${tag}` for skopeo. */
  dir: string
  tag: string
  manifestDigest: string
  configDigest: string
  layerDigest: string
  /** The manifest's bytes as stored (its digest is `manifestDigest`). */
  manifest: Buffer
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

export interface OciLayoutOptions {
  /** path → content of the single layer (ignored with `rootfsTar`) */
  files?: Record<string, string>
  /** An uncompressed tar to use as the single layer instead of `files` (a busybox rootfs, say). */
  rootfsTar?: string
  tag?: string
  /** The config's `architecture`; default amd64. */
  architecture?: string
  /** The config's `config` (Cmd, Env, Labels…); default `{Cmd: ['/hello.txt']}`. */
  config?: Record<string, unknown>
}

/**
 * Writes `files` (path → content), or the tar `rootfsTar`, as the single gzip layer of a linux image into
 * a new layout at `dir` (blobs already in `dir` stay; index.json is rewritten with this one image).
 */
export async function makeOciLayout(dir: string, opts: OciLayoutOptions = {}): Promise<OciLayoutImage> {
  const tag = opts.tag ?? 'latest'
  const files = opts.files ?? { 'hello.txt': 'hello from the registry harness\n' }
  const tar = opts.rootfsTar !== undefined ? await readFile(opts.rootfsTar) : await filesTar(files)
  const layer = gzipSync(tar)
  const config = Buffer.from(
    JSON.stringify({
      architecture: opts.architecture ?? 'amd64',
      os: 'linux',
      config: opts.config ?? { Cmd: ['/hello.txt'] },
      rootfs: { type: 'layers', diff_ids: [sha(tar)] },
    }),
  )
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length },
      ],
    }),
  )
  const blobs = join(dir, 'blobs', 'sha256')
  await mkdir(blobs, { recursive: true })
  for (const b of [layer, config, manifest]) await writeFile(join(blobs, sha(b).slice(7)), b)
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: sha(manifest),
        size: manifest.length,
        annotations: { 'org.opencontainers.image.ref.name': tag },
      },
    ],
  }
  await writeFile(join(dir, 'index.json'), JSON.stringify(index))
  return {
    dir,
    tag,
    manifestDigest: sha(manifest),
    configDigest: sha(config),
    layerDigest: sha(layer),
    manifest,
  }
}

/** A reproducible tar of `files` (root-owned, mtime 0, sorted). */
async function filesTar(files: Record<string, string>): Promise<Buffer> {
  const src = await mkdtemp(join(tmpdir(), 'grail-ocisrc-'))
  try {
    for (const [rel, content] of Object.entries(files)) {
      await mkdir(dirname(join(src, rel)), { recursive: true })
      await writeFile(join(src, rel), content)
    }
    const res = await runCommand({
      file: 'tar',
      args: [
        '-C',
        src,
        '--sort=name',
        '--owner=0',
        '--group=0',
        '--numeric-owner',
        '--mtime=@0',
        '-cf',
        '-',
        '.',
      ],
    })
    return res.stdout
  } finally {
    await rm(src, { recursive: true, force: true })
  }
}

export interface OciIndexLayout {
  dir: string
  tag: string
  /** digest of the image index the tag names */
  indexDigest: string
  index: Buffer
  /** the per-platform images, in the index's order */
  images: Array<OciLayoutImage & { architecture: string }>
}

/**
 * A layout whose tag names an OCI image index (a multi-platform image) of one linux image per entry of
 * `platforms`, each a single layer of its own `files`.
 */
export async function makeOciIndexLayout(
  dir: string,
  opts: { tag?: string; platforms: Array<{ architecture: string; files: Record<string, string> }> },
): Promise<OciIndexLayout> {
  const tag = opts.tag ?? 'latest'
  const images: OciIndexLayout['images'] = []
  for (const p of opts.platforms) {
    const img = await makeOciLayout(dir, { files: p.files, architecture: p.architecture, tag })
    images.push({ ...img, architecture: p.architecture })
  }
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: images.map((img) => ({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: img.manifestDigest,
        size: img.manifest.length,
        platform: { architecture: img.architecture, os: 'linux' },
      })),
    }),
  )
  await writeFile(join(dir, 'blobs', 'sha256', sha(index).slice(7)), index)
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.index.v1+json',
          digest: sha(index),
          size: index.length,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  )
  return { dir, tag, indexDigest: sha(index), index, images }
}
