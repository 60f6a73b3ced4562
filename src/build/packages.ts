import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../errors.js'
import type { PackageInfo } from '../state/index.js'

/**
 * Parses a dpkg status database (`var/lib/dpkg/status`) into the installed packages, sorted by name.
 * Used to record exactly which package versions an image contains.
 */
export function parseDpkgStatus(text: string): PackageInfo[] {
  const out: PackageInfo[] = []
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>()
    for (const line of stanza.split('\n')) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line)
      if (m) fields.set(m[1] as string, m[2] as string)
    }
    const name = fields.get('Package')
    const version = fields.get('Version')
    if (!name || !version) continue
    if (!(fields.get('Status') ?? '').endsWith(' installed')) continue
    out.push({ name, version, architecture: fields.get('Architecture') ?? 'all' })
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** Reads the package list of an unpacked root filesystem; an image without dpkg has none. */
export async function readPackages(rootfs: string): Promise<PackageInfo[]> {
  try {
    return parseDpkgStatus(await readFile(join(rootfs, 'var/lib/dpkg/status'), 'utf8'))
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  }
}
