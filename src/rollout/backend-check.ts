import type { Backend, BackendCheck } from '../proxy/types.js'
import type { HealthCheck } from '../spec/types.js'
import type { ProbeRecord } from '../state/index.js'

/**
 * The check the proxy runs on its own against one backend, from the service's health check (declared, or
 * the image's, or the TCP connect a listening service gets without one). A check on another port of the
 * instance is probed where the provider maps that port (`mapPort`). The proxy cannot run an `exec`
 * check inside an instance: it checks that the service port accepts connections instead, and Grail's own
 * probes (status, plan, apply, the reconciler) run the exec check.
 */
export async function backendCheckOf(
  check: HealthCheck | undefined,
  endpointPort: number,
  mapPort: (port: number) => Promise<{ host: string; port: number }>,
): Promise<BackendCheck | undefined> {
  if (check === undefined) return undefined
  const timing = { interval: check.interval, timeout: check.timeout }
  if (check.type === 'exec') return { type: 'tcp', port: endpointPort, ...timing }
  const port = check.port === undefined ? endpointPort : (await mapPort(check.port)).port
  if (check.type === 'tcp') return { type: 'tcp', port, ...timing }
  return { type: 'http', path: check.path, expectStatus: check.expectStatus, port, ...timing }
}

/** A backend with its check, when it has one. */
export function withCheck(backend: Backend, check: BackendCheck | undefined): Backend {
  return check === undefined ? backend : { ...backend, check }
}

/**
 * True when Grail's own last probes count the instance as unhealthy (`unhealthyThreshold` failures in a
 * row): such an instance is left out of the routes Grail gives the proxy until it passes again or is
 * replaced.
 */
export function countedUnhealthy(check: HealthCheck | undefined, probe: ProbeRecord | undefined): boolean {
  if (check === undefined || probe === undefined) return false
  return !probe.ok && probe.failures >= check.unhealthyThreshold
}
