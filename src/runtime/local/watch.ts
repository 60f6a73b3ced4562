import { type FSWatcher, watch as fsWatch, readFileSync } from 'node:fs'
import type { GrailHome } from '../../home.js'
import type { Scope } from '../types.js'
import { instancePaths } from './layout.js'
import { listInstances } from './observe.js'

/** How often the processes of running instances are checked (a read of /proc/PID/stat, no process spawned). */
const PID_CHECK_MS = 250

/**
 * True while `pid` runs. A zombie counts as exited: a container's init is an orphan once `runc create` has
 * exited, and where the host's init reaps orphans lazily (every two seconds, say) signal 0 alone would see
 * it alive that long after it died, while runc already reports the container stopped.
 */
export function processRunning(pid: number): boolean {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  } catch (err) {
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
  // the state follows the command name in parentheses, which may itself hold spaces and parentheses
  const state = stat.charAt(stat.lastIndexOf(')') + 2)
  return state !== 'Z' && state !== 'X'
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
      if (processRunning(pid)) continue
      pids.delete(id)
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
      dirWatch?.close()
      for (const w of uppers.values()) w.close()
      uppers.clear()
    },
  }
}
