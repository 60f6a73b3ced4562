import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { GrailHome } from '../home.js'
import type { Digest } from '../oci/digest.js'
import type { OciStore } from '../oci/store.js'
import { openStore } from '../oci/store.js'
import type { ImageConfig, Manifest } from '../oci/types.js'
import type { EngineEnv } from './types.js'
import { GrailError } from '../errors.js'
import { dataPlaneDir, proxyDir } from '../rollout/proxies.js'
import { dataPlaneKind } from '../proxy/dataplane.js'
import type { RouteCheck } from '../proxy/haproxy/files.js'
import type { Router } from '../rollout/types.js'
import { createProvider, requireProvider } from '../runtime/factory.js'
import type { HealthCheck, Project, ServiceSpec } from '../spec/types.js'
import type { Db } from '../state/index.js'
import { HEALTHCHECK_LABEL } from '../build/config-steps.js'

/** The image's own health check, from the label the builder wrote. */
async function imageHealthcheck(store: OciStore, digest: string): Promise<HealthCheck | undefined> {
  const manifest = await store.readJson<Manifest>(digest as Digest)
  const config = await store.readJson<ImageConfig>(manifest.config.digest)
  const label = config.config.Labels?.[HEALTHCHECK_LABEL]
  return label ? (JSON.parse(label) as HealthCheck) : undefined
}

/**
 * How the data plane checks the instances of a new route: as the declared health check does (an `exec`
 * check cannot run from the data plane, which checks that the port accepts connections instead). Each
 * instance then brings its own check with its route (see proxy/haproxy).
 */
function routeCheckOf(check: HealthCheck | undefined): { check?: RouteCheck } {
  if (check === undefined) return {}
  if (check.type === 'http')
    return { check: { type: 'http', expectStatus: check.expectStatus, timeout: check.timeout } }
  return { check: { type: 'tcp', timeout: check.timeout } }
}

/**
 * Everything apply, plan, status and rollback need for one environment: the provider it names (made by
 * the runtime factory: PROVIDER_UNAVAILABLE when this Grail does not have it, before anything is
 * opened), the supervised proxy of each published service, the store and the database.
 */
export async function openEnvironment(opts: {
  project: Project
  environment: string
  home: GrailHome
  db: Db
}): Promise<EngineEnv & { store: OciStore }> {
  requireProvider(opts.project, opts.environment)
  await mkdir(opts.home.root, { recursive: true })
  const store = await openStore(opts.home.oci, opts.home.tmp)
  const provider = await createProvider(opts.project, opts.environment, { home: opts.home, store })
  const routers = new Map<string, Router>()
  const routerFor = async (svc: ServiceSpec): Promise<Router | null> => {
    if (!svc.publish) return null
    const cached = routers.get(svc.name)
    if (cached) return cached
    if (dataPlaneKind() === 'haproxy') {
      const { ensureRoute } = await import('../proxy/haproxy/index.js')
      const { tls } = svc.publish
      const route = await ensureRoute(dataPlaneDir(opts.home), {
        environment: opts.environment,
        service: svc.name,
        listenHost: svc.publish.host,
        listenPort: svc.publish.port,
        mode: 'http',
        // the service's drain: how long a removed instance may finish what it has in flight
        drainTimeoutMs: svc.rollout.drain,
        ...(svc.publish.responseTimeout === undefined
          ? {}
          : { responseTimeoutMs: svc.publish.responseTimeout }),
        accessLog: svc.publish.accessLog ?? false,
        ...routeCheckOf(svc.healthcheck),
        ...(tls === undefined
          ? {}
          : {
              tls: {
                certificate: resolve(opts.project.dir, tls.certificate),
                key: resolve(opts.project.dir, tls.key),
              },
            }),
      })
      routers.set(svc.name, route)
      return route
    }
    const needs =
      svc.publish.tls !== undefined ? 'publish.tls' : svc.publish.accessLog ? 'publish.accessLog' : undefined
    if (needs !== undefined) {
      throw new GrailError(
        'PROXY_START',
        `service ${svc.name}: ${needs} needs HAProxy as the data plane, and this machine runs the builtin proxy`,
        { hint: 'install HAProxy (`apt-get install haproxy`) or unset GRAIL_DATAPLANE=builtin' },
      )
    }
    const { ensureProxy } = await import('../proxy/supervisor.js')
    const client = await ensureProxy({
      dir: proxyDir(opts.home, opts.environment, svc.name),
      listenHost: svc.publish.host,
      listenPort: svc.publish.port,
      mode: 'http',
      owner: { environment: opts.environment, service: svc.name },
    })
    routers.set(svc.name, client)
    return client
  }
  return {
    project: opts.project,
    environment: opts.environment,
    home: opts.home,
    db: opts.db,
    provider,
    store,
    routerFor,
    imageHealthcheck: (digest) => imageHealthcheck(store, digest),
  }
}
