import type { GrailHome } from '../home.js'
import type { OciStore } from '../oci/store.js'
import type { Backend } from '../proxy/types.js'
import type { RuntimeProvider } from '../runtime/types.js'
import type { HealthCheck, Project, RolloutSpec, ServiceSpec } from '../spec/types.js'
import type { Db, ReleaseRecord } from '../state/index.js'

/** An environment opened for executing a plan: state, the provider, the routers and the hooks. */
export interface ExecEnv {
  project: Project
  environment: string
  home: GrailHome
  db: Db
  store: OciStore
  provider: RuntimeProvider
  /** the router of a published service (the supervised proxy); null when it is not published */
  routerFor: (service: ServiceSpec) => Promise<Router | null>
  /** the image's own health check (from its label), when the service declares none */
  imageHealthcheck: (digest: string) => Promise<HealthCheck | undefined>
  onEvent?: (service: string, e: RolloutEvent) => void
}

/** What routes traffic to a service's instances: the supervised proxy, or nothing for unpublished services. */
export interface Router {
  /** atomic swap; resolves once connections to removed backends have drained */
  setBackends(backends: Backend[]): Promise<unknown>
}

export type RolloutEvent =
  | { type: 'instance-created'; instance: string; release: number }
  | { type: 'instance-healthy'; instance: string; probes: number }
  | { type: 'instance-unhealthy'; instance: string; reason: string }
  | { type: 'traffic'; backends: string[] }
  | { type: 'instance-destroyed'; instance: string; reason: string }
  | { type: 'rolled-back'; release: number; reason: string }
  | { type: 'release-active'; release: number }

/** Everything a rollout of one service in one environment works with. */
export interface RolloutContext {
  db: Db
  provider: RuntimeProvider
  router: Router | null
  project: string
  environment: string
  service: string
  replicas: number
  /** the process port inside the instance (PORT), if the service listens */
  port?: number
  volumes: Array<{ name: string; path: string }>
  healthcheck?: HealthCheck
  rollout: RolloutSpec
  onEvent?: (e: RolloutEvent) => void
  /** a fresh instance id for a release (tests make them predictable) */
  newId?: (release: number) => string
}

export interface RolloutResult {
  release: ReleaseRecord
  ok: boolean
  /** why the new release was rolled back */
  reason?: string
  created: string[]
  destroyed: string[]
}
