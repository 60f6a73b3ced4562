import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { probeOnce, waitHealthy } from '../../src/rollout/health.js'
import type { HealthCheck } from '../../src/spec/types.js'
import { freePort } from '../../test/helpers/net.js'

export interface AppTiming {
  /** spawn → first 200, polled every 1 ms: what the app itself needs to answer */
  rawMs: number[]
  /** spawn → healthy through Grail's own health gate (waitHealthy) with the benchmark's check */
  gatedMs: number[]
  /** probes the gate needed */
  probes: number[]
}

/**
 * The app's own start-to-healthy time outside any container: the same busybox httpd and page the
 * benchmark deploys, started as a plain process on the host. The gated variant runs Grail's
 * `waitHealthy` (probe at once, then every `interval`), so its result includes the wait the health-check
 * interval imposes; that part is the app's health wait, not rollout overhead.
 */
export async function timeApp(o: { www: string; check: HealthCheck; runs: number }): Promise<AppTiming> {
  const out: AppTiming = { rawMs: [], gatedMs: [], probes: [] }
  for (let i = 0; i < o.runs; i++) {
    for (const mode of ['raw', 'gated'] as const) {
      const port = await freePort()
      const t0 = performance.now()
      const child = spawn(
        '/bin/busybox',
        ['sh', '-c', `exec busybox httpd -f -p 127.0.0.1:${port} -h "$WWW"`],
        {
          env: { WWW: o.www },
          stdio: 'ignore',
        },
      )
      const exited = once(child, 'exit')
      try {
        const target = { host: '127.0.0.1', port }
        if (mode === 'raw') {
          for (;;) {
            if ((await probeOnce(o.check, target)).ok) break
            if (performance.now() - t0 > 5000) throw new Error('busybox httpd did not answer within 5 s')
            await sleep(1)
          }
          out.rawMs.push(performance.now() - t0)
        } else {
          const gate = await waitHealthy(o.check, target, { timeoutMs: 5000 })
          if (!gate.healthy) throw new Error(`busybox httpd on the host: ${gate.reason}`)
          out.gatedMs.push(performance.now() - t0)
          out.probes.push(gate.probes)
        }
      } finally {
        child.kill('SIGKILL')
        await exited
      }
    }
  }
  return out
}
