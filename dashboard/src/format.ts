/** Short human durations and times, as the CLI prints them (`45s`, `3m`, `2h 5m`, `4d`). */

/** `ms` as the largest unit or two: 45s, 3m 20s, 2h 5m, 4d 3h. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return s % 60 ? `${m}m ${s % 60}s` : `${m}m`
  const hours = Math.floor(m / 60)
  if (hours < 24) return m % 60 ? `${hours}h ${m % 60}m` : `${hours}h`
  const d = Math.floor(hours / 24)
  return hours % 24 ? `${d}d ${hours % 24}h` : `${d}d`
}

/** How long ago an ISO time was, at `now`. */
export function ageOf(iso: string, now: number): number {
  const t = Date.parse(iso)
  return Number.isNaN(t) ? 0 : now - t
}

/** `sha256:0123456789ab` from a full digest (12 hex digits, as `grail images` shows). */
export function shortDigest(d: string | null | undefined): string {
  if (!d) return '-'
  const [alg, hex] = d.includes(':') ? d.split(':', 2) : ['', d]
  return `${alg ? `${alg}:` : ''}${(hex ?? '').slice(0, 12)}`
}

/** Bytes as B, KiB, MiB, GiB. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`
}

/** `2026-12-02 14:28:05`, in the browser's time zone, from an ISO time. */
export function formatTime(iso: string): string {
  const t = new Date(iso)
  if (Number.isNaN(t.getTime())) return iso
  const p = (n: number) => String(n).padStart(2, '0')
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())} ${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}`
}
