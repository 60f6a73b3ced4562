// Debian's `docker-registry` (distribution 2.8) as bench/gc's peer: its filesystem storage written by hand
// from the same blobs as Grail's store, its config, its `garbage-collect` command as data, and the parts of
// its output and its storage the bench checks.
import { copyFile, mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../../src/errors.js'
import { type Digest, digestHex } from '../../src/oci/digest.js'
import { type Command, runCommand } from '../../src/util/exec.js'
import { PROJECT, type Version } from './fixture.js'

/** Where the filesystem driver keeps everything, below its `rootdirectory`. */
export const registryData = (root: string) => join(root, 'docker', 'registry', 'v2')

/** Path of a blob's content in the registry's storage. */
export function registryBlobPath(root: string, digest: string): string {
  const hex = digestHex(digest as Digest)
  return join(registryData(root), 'blobs', 'sha256', hex.slice(0, 2), hex, 'data')
}

/** The repository each image name is pushed to. */
export const repositoryOf = (name: string) => `${PROJECT}/${name}`

/** The tags a registry user would keep: `latest` on the newest version, `vN` on each deployed one. */
export function tagsOf(v: Version): string[] {
  return [...(v.newest ? ['latest'] : []), ...(v.service !== undefined ? [`v${v.version}`] : [])]
}

async function link(path: string, digest: string): Promise<void> {
  await mkdir(path, { recursive: true })
  await writeFile(join(path, 'link'), digest)
}

/**
 * Lays the versions out as `docker push` would have: each blob once under `blobs/`, and per repository
 * a layer link for each config and layer, a revision link for each manifest and, for tagged versions, the
 * tag's current and index links. Blob bytes are copied from Grail's store (`blobDir/<hex>`).
 */
export async function writeRegistry(
  root: string,
  blobDir: string,
  versions: readonly Version[],
): Promise<void> {
  const copied = new Set<string>()
  for (const v of versions) {
    const repo = join(registryData(root), 'repositories', repositoryOf(v.name))
    for (const d of [v.manifest, v.config, ...v.layers]) {
      if (copied.has(d.digest)) continue
      copied.add(d.digest)
      const dest = registryBlobPath(root, d.digest)
      await mkdir(join(dest, '..'), { recursive: true })
      await copyFile(join(blobDir, digestHex(d.digest)), dest)
    }
    for (const d of [v.config, ...v.layers])
      await link(join(repo, '_layers', 'sha256', digestHex(d.digest)), d.digest)
    const hex = digestHex(v.manifest.digest)
    await link(join(repo, '_manifests', 'revisions', 'sha256', hex), v.manifest.digest)
    for (const tag of tagsOf(v)) {
      await link(join(repo, '_manifests', 'tags', tag, 'current'), v.manifest.digest)
      await link(join(repo, '_manifests', 'tags', tag, 'index', 'sha256', hex), v.manifest.digest)
    }
  }
}

/** Digests of the blobs in the registry's storage (a `data` file under `blobs/sha256/xx/<hex>/`). */
export async function registryBlobs(root: string): Promise<{ digests: Set<string>; bytes: number }> {
  const dir = join(registryData(root), 'blobs', 'sha256')
  const digests = new Set<string>()
  let bytes = 0
  for (const prefix of await readdir(dir))
    for (const hex of await readdir(join(dir, prefix))) {
      try {
        bytes += (await stat(registryBlobPath(root, `sha256:${hex}`))).size
        digests.add(`sha256:${hex}`)
      } catch (err) {
        // gc removes a blob's whole directory; a directory without its data file holds no blob either
        if (!isErrno(err, 'ENOENT')) throw err
      }
    }
  return { digests, bytes }
}

/** Manifest digests the registry still lists as revisions, over every repository. */
export async function registryRevisions(root: string, versions: readonly Version[]): Promise<Set<string>> {
  const out = new Set<string>()
  for (const v of versions) {
    const hex = digestHex(v.manifest.digest)
    const path = join(
      registryData(root),
      'repositories',
      repositoryOf(v.name),
      '_manifests',
      'revisions',
      'sha256',
      hex,
    )
    try {
      await stat(join(path, 'link'))
      out.add(v.manifest.digest)
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err
    }
  }
  return out
}

/** A minimal registry config: filesystem storage at `root`, logs at error level only. */
export function registryConfig(root: string): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${root}`,
    '',
  ].join('\n')
}

/** `docker-registry garbage-collect [--dry-run] --delete-untagged CONFIG`. */
export function registryGcCommand(o: { config: string; dryRun: boolean }): Command {
  return {
    file: 'docker-registry',
    args: ['garbage-collect', ...(o.dryRun ? ['--dry-run'] : []), '--delete-untagged', o.config],
  }
}

export interface RegistryGcSummary {
  marked: number
  blobsEligible: number
  manifestsEligible: number
}

/** The summary line of a garbage-collect run: `N blobs marked, N blobs and N manifests eligible for deletion`. */
export function parseRegistryGc(stdout: string): RegistryGcSummary {
  const m = /(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion/.exec(stdout)
  if (!m) throw new Error(`docker-registry garbage-collect printed no summary:\n${stdout.slice(-2000)}`)
  return { marked: Number(m[1]), blobsEligible: Number(m[2]), manifestsEligible: Number(m[3]) }
}

/** The installed registry's version, e.g. `2.8.2+ds1`. */
export async function registryVersion(): Promise<string> {
  const res = await runCommand({ file: 'docker-registry', args: ['--version'] })
  const version = /\s(v?\d[\w.+~-]*)\s*$/.exec(res.stdout.toString().trim())?.[1]
  if (!version) throw new Error(`docker-registry --version printed no version: ${res.stdout.toString()}`)
  return version
}
