import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

/** Clock ticks per second of /proc/PID/stat's times (`getconf CLK_TCK`, 100 on Linux). */
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

interface Times {
  /** utime + stime of the process itself, in ticks */
  own: number
  /** cutime + cstime: children it has waited for (a `runc` it ran, say), in ticks */
  children: number
}

/** The fields of /proc/PID/stat after the parenthesised command name (which may hold spaces). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

function times(pid: number): Times {
  // after the name: state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17); index = field - 3
  const f = statFields(pid).map(Number)
  return { own: (f[11] ?? 0) + (f[12] ?? 0), children: (f[13] ?? 0) + (f[14] ?? 0) }
}

/** The parent of `pid`. */
export function ppidOf(pid: number): number {
  return Number(statFields(pid)[1])
}

/** The pids whose parent is `pid`, now. */
export function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (ppidOf(Number(entry)) === pid) out.push(Number(entry))
    } catch {
      // exited while we looked
    }
  }
  return out
}

/** The command name of `pid` (/proc/PID/comm). */
export function commOf(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
}

/** VmRSS of `pid`, in kB. */
export function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m?.[1]) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(m[1])
}

export interface IdleSample {
  name: string
  pid: number
  seconds: number
  /** utime + stime over the window, % of one core */
  cpuPct: number
  /** the same plus cutime + cstime (children waited for during the window), % of one core */
  cpuWithChildrenPct: number
  /** VmRSS at the start, at the end and the highest seen (sampled every second), kB */
  rssKb: { start: number; end: number; max: number }
}

/**
 * Samples the CPU time (/proc/PID/stat: utime+stime, and separately with cutime+cstime) and resident memory
 * of each named process over the same `seconds` of wall-clock time.
 */
export async function sampleIdle(procs: Record<string, number>, seconds: number): Promise<IdleSample[]> {
  const entries = Object.entries(procs)
  const t0 = performance.now()
  const start = entries.map(([, pid]) => ({ times: times(pid), rss: rssKb(pid) }))
  const max = start.map((s) => s.rss)
  for (let i = 0; i < seconds; i++) {
    await sleep(1000)
    entries.forEach(([, pid], j) => {
      max[j] = Math.max(max[j] as number, rssKb(pid))
    })
  }
  const wall = (performance.now() - t0) / 1000
  return entries.map(([name, pid], j) => {
    const a = start[j] as { times: Times; rss: number }
    const b = times(pid)
    const own = (b.own - a.times.own) / CLK_TCK
    const children = (b.children - a.times.children) / CLK_TCK
    return {
      name,
      pid,
      seconds: Math.round(wall * 10) / 10,
      cpuPct: (100 * own) / wall,
      cpuWithChildrenPct: (100 * (own + children)) / wall,
      rssKb: { start: a.rss, end: rssKb(pid), max: max[j] as number },
    }
  })
}
