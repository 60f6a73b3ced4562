import type { ProxyReport } from '../rollout/proxies.js'
import { style } from './render.js'

/** One line about a proxy: `proxy web on 127.0.0.1:8080: restarted (pid 123): it was down …`. */
export function proxyLine(p: ProxyReport): string {
  const colour = p.state === 'up' ? style.green : p.state === 'down' ? style.red : style.yellow
  const pid = p.pid === undefined ? '' : ` (pid ${p.pid})`
  const env = p.environment === '?' ? '' : `${p.environment}/`
  return `proxy ${env}${p.service} on ${p.listen}: ${colour(p.state)}${pid}: ${p.detail}`
}

/**
 * What plan, apply and drift say about proxies: only what was wrong or was done (a restart, a stop),
 * on stderr, so their stdout (and `--json`) stays what it was.
 */
export function noteProxies(reports: readonly ProxyReport[]): void {
  for (const p of reports) if (p.state !== 'up') process.stderr.write(`${proxyLine(p)}\n`)
}

/** True when some proxy was found not serving (down, or restarted because it was). */
export function proxyWasDown(reports: readonly ProxyReport[]): boolean {
  return reports.some((p) => p.state === 'down' || p.state === 'restarted')
}
