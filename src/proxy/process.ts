import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { isErrno } from '../errors.js'

/**
 * True while `pid` is a running process. A zombie awaiting its parent counts as gone, but only once every
 * thread of it has exited: the main thread of a multi-threaded process (node is one) turns zombie first,
 * while its other threads still run their exit and still hold its files, a listening socket among them.
 */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0)
  } catch (err) {
    if (isErrno(err, 'ESRCH')) return false
    // EPERM: it exists but belongs to someone else.
    if (isErrno(err, 'EPERM')) return true
    throw err
  }
  try {
    if (!isZombie(await readFile(`/proc/${pid}/stat`, 'utf8'))) return true
    // a task list or task that vanishes while read has exited: it keeps nothing alive
    for (const task of await readdir(`/proc/${pid}/task`).catch(() => [])) {
      const stat = await readFile(`/proc/${pid}/task/${task}/stat`, 'utf8').catch(() => '')
      if (stat !== '' && !isZombie(stat)) return true
    }
    return false
  } catch (err) {
    // Gone since the kill(0) (the read of a vanishing /proc entry fails with ESRCH), or no /proc on this
    // system (then kill(0) is all there is to go by).
    if (isErrno(err, 'ESRCH')) return false
    if (isErrno(err, 'ENOENT')) return !existsSync('/proc/self')
    throw err
  }
}

/**
 * True when a `/proc/<pid>/stat` line ("pid (comm) S ...") is of a task that exited: zombie or dead. comm may
 * hold spaces and parens, so the state is read after the last ')'.
 */
function isZombie(stat: string): boolean {
  const state = stat.charAt(stat.lastIndexOf(')') + 2)
  return state === 'Z' || state === 'X'
}

/**
 * True when `pid` is a proxy daemon serving `socketPath`, or the keeper of one, judged by its command line. Guards every signal
 * we send: after a reboot or pid wrap-around a pid file can name an unrelated process. Without /proc
 * (not Linux) the pid is trusted.
 */
export async function isProxyDaemon(pid: number, socketPath: string): Promise<boolean> {
  let cmdline: string
  try {
    cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8')
  } catch (err) {
    // Gone, or no /proc on this system (then the pid is all there is to go by).
    if (isErrno(err, 'ESRCH')) return false
    if (isErrno(err, 'ENOENT')) return !existsSync('/proc/self') && (await isAlive(pid))
    throw err
  }
  const argv = cmdline.split('\0')
  const entry = argv.some((a) => a.includes('daemon-main') || a.includes('keeper-main'))
  return entry && argv.includes(socketPath)
}

/** Polls until `pid` exited; false when it still runs after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (await isAlive(pid)) {
    if (Date.now() >= deadline) return false
    await sleep(25)
  }
  return true
}

/** Sends `signal` to `pid`; false when the process was already gone. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig)
    return true
  } catch (err) {
    if (isErrno(err, 'ESRCH')) return false
    throw err
  }
}
