import { request } from 'node:http'
import { connect } from 'node:net'
import type { BackendCheck } from './types.js'

/** What one active probe of a backend saw. */
export interface ProbeOutcome {
  readonly ok: boolean
  /** "HTTP 200", "HTTP 500", "timed out", "ECONNREFUSED" */
  readonly detail: string
}

/**
 * One probe of `check` against `host`: judged as the rollout's health gate judges it (an HTTP answer
 * must carry exactly `expectStatus`; a TCP connect must be accepted), failing after `check.timeout`.
 * A fresh connection every time (no pool), so a backend that stopped answering cannot hide behind a
 * socket that was fine before.
 */
export function probeBackend(host: string, check: BackendCheck): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let settled = false
    const done = (r: ProbeOutcome): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(r)
    }
    const timer = setTimeout(() => {
      done({ ok: false, detail: 'timed out' })
      cleanup()
    }, check.timeout)
    let cleanup: () => void
    if (check.type === 'tcp') {
      const s = connect({ host, port: check.port })
      cleanup = () => s.destroy()
      s.once('connect', () => {
        done({ ok: true, detail: 'connected' })
        s.destroy()
      })
      s.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, detail: err.code ?? err.message }))
      return
    }
    const req = request(
      {
        host,
        port: check.port,
        path: check.path,
        method: 'GET',
        agent: false,
        headers: { connection: 'close', 'user-agent': 'grail-proxy-health' },
        // the same lenient parsing as proxied responses (busybox httpd CGI ends header lines with LF)
        insecureHTTPParser: true,
      },
      (res) => {
        const status = res.statusCode ?? 0
        res.resume()
        res.on('error', () => {})
        done({ ok: status === check.expectStatus, detail: `HTTP ${status}` })
        req.destroy()
      },
    )
    cleanup = () => req.destroy()
    req.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, detail: err.code ?? err.message }))
    req.end()
  })
}
