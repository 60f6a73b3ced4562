// A tiny OCI image layout written directly (one gzip layer of the given files, a config, a manifest, an
// index with one tagged entry): for tests that need an image some client other than Grail pushes.
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
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

/** Writes `files` (path → content) as the single layer of an amd64 linux image into a new layout at `dir`. */
export async function makeOciLayout(
  dir: string,
  opts: { files?: Record<string, string>; tag?: string } = {},
): Promise<OciLayoutImage> {
  const tag = opts.tag ?? 'latest'
  const files = opts.files ?? { 'hello.txt': 'hello from the registry harness\n' }
  const src = await mkdtemp(join(tmpdir(), 'grail-ocisrc-'))
  let tar: Buffer
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
    tar = res.stdout
  } finally {
    await rm(src, { recursive: true, force: true })
  }
  const layer = gzipSync(tar)
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/hello.txt'] },
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
