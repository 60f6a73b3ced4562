const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** One or more `<number><unit>` groups, no spaces: `500ms`, `2s`, `1h30m`, `1.5h`, `7d`. */
export const DURATION_PATTERN = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/

/**
 * Parses a spec duration to milliseconds: a string of `<number><unit>` groups (units ms, s, m, h, d;
 * `1h30m`, `1.5s`) or a non-negative number of milliseconds. Returns undefined when the input is not a
 * duration, so callers can report where it came from.
 */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? Math.round(input) : undefined
  if (!DURATION_PATTERN.test(input)) return undefined
  let total = 0
  for (const m of input.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number)
  }
  return Math.round(total)
}

/** Renders milliseconds the way a spec would write them (`90000` → `1m30s`), for docs and messages. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s'
  let rest = ms
  let out = ''
  for (const unit of ['d', 'h', 'm', 's', 'ms']) {
    const size = UNIT_MS[unit] as number
    const n = Math.floor(rest / size)
    if (n > 0) {
      out += `${n}${unit}`
      rest -= n * size
    }
  }
  return out
}
