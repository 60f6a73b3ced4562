/** One sample of a metric: its labels and value. */
export interface Sample {
  labels: Record<string, string>
  value: number
  /** `_sum`, `_count` of a summary */
  suffix?: string
}

/** A metric family: name, help, type, samples. */
export interface MetricFamily {
  name: string
  help: string
  type: 'gauge' | 'counter' | 'summary'
  samples: Sample[]
}

/** A label value as the text format writes it: backslash, double quote and newline escaped. */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** HELP text escaping: backslash and newline (quotes stay). */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Number.POSITIVE_INFINITY) return '+Inf'
  if (v === Number.NEGATIVE_INFINITY) return '-Inf'
  return String(v)
}

/**
 * The Prometheus text exposition format (version 0.0.4) of `families`: a HELP and a TYPE line per
 * family, then one line per sample with its labels sorted by name.
 */
export function renderMetrics(families: readonly MetricFamily[]): string {
  const lines: string[] = []
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`)
    lines.push(`# TYPE ${f.name} ${f.type}`)
    for (const s of f.samples) {
      const labels = Object.entries(s.labels)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      lines.push(
        `${f.name}${s.suffix ?? ''}${labels.length ? `{${labels.join(',')}}` : ''} ${formatValue(s.value)}`,
      )
    }
  }
  return `${lines.join('\n')}\n`
}
