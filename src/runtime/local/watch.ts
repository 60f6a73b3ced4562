import { closeSync, type FSWatcher, watch as fsWatch, openSync, readSync } from 'node:fs'
import type { GrailHome } from '../../home.js'
import type { Scope } from '../types.js'
import { instancePaths } from './layout.js'
import { listInstances } from './observe.js'

/** How often the processes of running instances are checked (one read of /proc/PID/stat each, no spawn). */
const PID_CHECK_MS = 250
/** The state follows pid and command name (at most 16 bytes): it is within the first bytes of the line. */
const STAT_HEAD = 128

/** Checks processes for life, each by its /proc/PID/stat, which stays open between checks. */
export interface PidProbe {
  /**
   * True while `pid` runs. A zombie counts as exited: a container's init is an orphan once `runc create`
   * has exited, and where the host's init reaps orphans lazily (every two seconds, say) signal 0 alone
   * would see it alive that long after it died, while runc already reports the container stopped.
   */
  running(pid: number): boolean
  /** Closes what was kept open for `pid`. */
  forget(pid: number): void
  close(): void
}

/**
 * A PidProbe: the first check of a pid opens its /proc/PID/stat, every later one is a single read of it
 * from the start (the kernel renders it anew), which fails with ESRCH once the process is reaped, even if
 * its pid is in use again by then.
 */
export function pidProbe(): PidProbe {
  const fds = new Map<number, number>()
  const head = Buffer.alloc(STAT_HEAD)
  const forget = (pid: number): void => {
    const fd = fds.get(pid)
    if (fd === undefined) return
    fds.delete(pid)
    try {
      closeSync(fd)
    } catch {
      // already closed: nothing held
    }
  }
  return {
    running(pid) {
      let fd = fds.get(pid)
      let n: number
      try {
        if (fd === undefined) {
          fd = openSync(`/proc/${pid}/stat`, 'r')
          fds.set(pid, fd)
        }
        n = readSync(fd, head, 0, STAT_HEAD, 0)
      } catch (err) {
        forget(pid)
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'ENOENT' || code === 'ESRCH') return false
        // no /proc to read: signal 0 is all there is to go by
        try {
          process.kill(pid, 0)
          return true
        } catch (e) {
          return (e as NodeJS.ErrnoException).code === 'EPERM'
        }
      }
      // the command name in parentheses may itself hold spaces and parentheses; nothing after it does
      const line = head.toString('latin1', 0, n)
      const state = line.charAt(line.lastIndexOf(')') + 2)
      return state !== 'Z' && state !== 'X'
    },
    forget,
    close() {
      for (const pid of [...fds.keys()]) forget(pid)
    },
  }
}

/**
 * The local provider's events, which runc does not have: every instance's init process is checked for
 * life four times a second by its pid (its /proc/PID/stat: no `runc` spawned), each running
 * instance's overlay upper dir is watched with inotify (a write through the overlay lands there), and
 * the instances dir itself, so that an instance created or removed by anyone refreshes what is watched.
 */
export function watchLocal(
  home: GrailHome,
  scope: Scope,
  onChange: (why: string) => void,
): { close(): void } {
  let closed = false
  let pids = new Map<string, number>()
  const probe = pidProbe()
  const uppers = new Map<string, FSWatcher>()
  let refreshing: Promise<void> | undefined
  let again = false

  const refresh = (): void => {
    if (closed) return
    if (refreshing) {
      again = true
      return
    }
    refreshing = (async () => {
      try {
        const seen = await listInstances(home, scope)
        const next = new Map<string, number>()
        for (const o of seen) if (o.state === 'running' && o.pid !== undefined) next.set(o.id, o.pid)
        const live = new Set(next.values())
        for (const pid of pids.values()) if (!live.has(pid)) probe.forget(pid)
        pids = next
        for (const [id, w] of uppers)
          if (!next.has(id)) {
            w.close()
            uppers.delete(id)
          }
        for (const id of next.keys()) {
          if (uppers.has(id) || closed) continue
          try {
            const w = fsWatch(
              instancePaths(home, id).upper,
              { recursive: true, persistent: false },
              (_e, file) => onChange(`instance ${id}: ${file ?? 'a file'} changed`),
            )
            w.on('error', () => {
              w.close()
              uppers.delete(id)
            })
            uppers.set(id, w)
          } catch {
            // an instance removed between the list and the watch: the instances dir tells
          }
        }
      } catch {
        // a failed look (runc busy): the next change or tick tries again
      } finally {
        refreshing = undefined
        if (again) {
          again = false
          refresh()
        }
      }
    })()
  }

  let dirWatch: FSWatcher | undefined
  const watchDir = (): void => {
    try {
      dirWatch = fsWatch(home.instances, { persistent: false }, () => {
        onChange('instances changed')
        refresh()
      })
      dirWatch.on('error', () => {
        dirWatch?.close()
        dirWatch = undefined
      })
    } catch {
      // no instances dir yet: the tick tries again until the first instance makes it
    }
  }
  watchDir()
  const tick = setInterval(() => {
    if (dirWatch === undefined) {
      watchDir()
      if (dirWatch !== undefined) refresh()
    }
    for (const [id, pid] of pids) {
      if (probe.running(pid)) continue
      pids.delete(id)
      probe.forget(pid)
      onChange(`instance ${id}: process ${pid} exited`)
      refresh()
    }
  }, PID_CHECK_MS)
  tick.unref()
  refresh()
  return {
    close() {
      closed = true
      clearInterval(tick)
      probe.close()
      dirWatch?.close()
      for (const w of uppers.values()) w.close()
      uppers.clear()
    },
  }
}
