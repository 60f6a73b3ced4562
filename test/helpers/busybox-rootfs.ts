import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * A tiny root filesystem tarball made from Debian's static busybox: enough for sandboxed `run` steps and
 * an httpd, in milliseconds instead of the seconds a Debian bootstrap takes.
 */
export function makeBusyboxRootfs(dest: string, opts: { dirs?: string[] } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'grail-bbroot-'))
  try {
    for (const d of ['bin', 'etc', 'tmp', 'srv', 'usr/bin', 'var', ...(opts.dirs ?? [])])
      mkdirSync(join(dir, d), { recursive: true })
    chmodSync(join(dir, 'tmp'), 0o1777)
    copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'))
    chmodSync(join(dir, 'bin', 'busybox'), 0o755)
    for (const applet of [
      'sh',
      'ls',
      'cat',
      'echo',
      'date',
      'mkdir',
      'rm',
      'touch',
      'httpd',
      'sleep',
      'wget',
      'env',
      'id',
    ]) {
      symlinkSync('busybox', join(dir, 'bin', applet))
    }
    writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/srv:/bin/sh\n')
    writeFileSync(join(dir, 'etc', 'group'), 'root:x:0:\nwww:x:33:\n')
    execFileSync('tar', ['-C', dir, '--numeric-owner', '-cf', dest, '.'])
    return dest
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
