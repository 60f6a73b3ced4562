import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ExecResult } from '../runtime/types.js'
import type { HealthCheck } from '../spec/types.js'

/** Where a probe goes: the instance's endpoint, and a way to run a command in it for exec checks. */
export interface ProbeTarget {
  host: string
  port: number
  exec?: (argv: string[]) => Promise<ExecResult>
}

export interface ProbeResult {
  ok: boolean
  /** what was seen, for status and events: "HTTP 200", "connection refused", "exit 1" */
  detail: string
}

function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException }
  const code = e.cause?.code ?? e.code
  if (code === 'ECONNREFUSED') return 'connection refused'
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out'
  return code ?? e.message
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const sock = connect({ host, port })
    const done = (r: ProbeResult) => {
      sock.destroy()
      resolve(r)
    }
    sock.setTimeout(timeoutMs, () => done({ ok: false, detail: 'timed out' }))
    sock.once('connect', () => done({ ok: true, detail: 'connected' }))
    sock.once('error', (err) => done({ ok: false, detail: describeError(err) }))
  })
}

/** Without a declared check, a listening service must at least accept connections on its port. */
export function checkFor(
  declared: HealthCheck | undefined,
  port: number | undefined,
): HealthCheck | undefined {
  if (declared) return declared
  if (port === undefined) return undefined
  return {
    type: 'tcp',
    interval: 200,
    timeout: 1000,
    healthyThreshold: 1,
    unhealthyThreshold: 3,
    startPeriod: 0,
  }
}

/** One probe of a health check against an instance. */
export async function probeOnce(check: HealthCheck, target: ProbeTarget): Promise<ProbeResult> {
  switch (check.type) {
    case 'http': {
      const url = `http://${target.host}:${check.port ?? target.port}${check.path}`
      // AbortSignal.timeout's timer does not keep the process alive, nor does undici's socket: a
      // probe whose SYN goes unanswered (an instance's network torn down under it) let a `grail status`
      // exit 0 with nothing printed. This timer holds the process until the probe ends.
      const controller = new AbortController()
      const timer = setTimeout(
        () => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
        check.timeout,
      )
      try {
        const res = await fetch(url, { signal: controller.signal, redirect: 'manual' })
        await res.arrayBuffer()
        return { ok: res.status === check.expectStatus, detail: `HTTP ${res.status}` }
      } catch (err) {
        return { ok: false, detail: describeError(err) }
      } finally {
        clearTimeout(timer)
      }
    }
    case 'tcp':
      return probeTcp(target.host, check.port ?? target.port, check.timeout)
    case 'exec': {
      if (!target.exec) return { ok: false, detail: 'exec checks need a provider that can exec' }
      const res = await Promise.race([target.exec(check.command), sleep(check.timeout).then(() => undefined)])
      if (!res) return { ok: false, detail: 'timed out' }
      return { ok: res.code === 0, detail: `exit ${res.code}` }
    }
  }
}

export type GateResult =
  | { healthy: true; probes: number }
  | { healthy: false; reason: string; probes: number }

/**
 * The health gate of a new instance: probes every `interval` (after `startPeriod`) until
 * `healthyThreshold` probes in a row pass, or fails when `timeoutMs` has gone by or `alive()` says the
 * process is gone, with the last thing a probe saw as the reason.
 */
export async function waitHealthy(
  check: HealthCheck,
  target: ProbeTarget,
  opts: { timeoutMs: number; alive?: () => Promise<boolean> },
): Promise<GateResult> {
  const deadline = Date.now() + opts.timeoutMs
  if (check.startPeriod > 0) await sleep(Math.min(check.startPeriod, opts.timeoutMs))
  let passes = 0
  let probes = 0
  let last = 'no probe ran'
  for (;;) {
    const r = await probeOnce(check, target)
    probes++
    last = r.detail
    passes = r.ok ? passes + 1 : 0
    if (passes >= check.healthyThreshold) return { healthy: true, probes }
    if (opts.alive && !(await opts.alive()))
      return { healthy: false, reason: `process exited (last probe: ${last})`, probes }
    if (Date.now() + check.interval > deadline) {
      return {
        healthy: false,
        reason: `not healthy within ${opts.timeoutMs} ms (last probe: ${last})`,
        probes,
      }
    }
    await sleep(check.interval)
  }
}
