import { readFile } from 'node:fs/promises'
import { sep } from 'node:path'

/** Mount points of this mount namespace, from /proc/self/mountinfo (octal escapes decoded). */
export async function listMountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8')
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) =>
      (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) =>
        String.fromCharCode(Number.parseInt(o, 8)),
      ),
    )
}

/** Mount points at or below `dir`, deepest first (the order to unmount them in). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const all = await listMountPoints()
  return all.filter((m) => m === dir || m.startsWith(dir + sep)).sort((a, b) => b.length - a.length)
}

/** True if a process with this pid exists (signal 0 probes without delivering anything). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
