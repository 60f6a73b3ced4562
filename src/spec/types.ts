/**
 * The normalised model of a project, as the engine sees it after `grail.yaml` / `grail.config.ts` has been
 * validated. Durations are milliseconds; paths inside images are absolute POSIX paths; paths on the host
 * (build context, rootfs tarballs) are absolute after loading.
 */

export type HealthCheck = {
  /** ms between probes */
  interval: number
  /** ms before one probe counts as failed */
  timeout: number
  /** consecutive passes before an instance takes traffic */
  healthyThreshold: number
  /** consecutive failures before an instance is unhealthy */
  unhealthyThreshold: number
  /** ms after start during which failures do not count */
  startPeriod: number
} & (
  | { type: 'http'; path: string; port?: number; expectStatus: number }
  | { type: 'tcp'; port?: number }
  | { type: 'exec'; command: string[] }
)

export type BaseSource =
  | { kind: 'scratch' }
  | {
      kind: 'debian'
      suite: string
      variant: 'essential' | 'minbase' | 'required' | 'important' | 'standard'
      include: string[]
      components: string[]
      mirror?: string
      architecture?: string
    }
  /** another image of this project (ancestry); unless pinned, the version its spec builds now */
  | { kind: 'image'; image: string; version?: number }
  /** a local OCI image layout directory (absolute), optionally a ref name inside it */
  | { kind: 'oci'; path: string; ref?: string }
  /** a rootfs tarball (.tar or .tar.gz, absolute path) */
  | { kind: 'rootfs'; path: string }
  /** an image in a registry, `host[:port]/repo[:tag][@digest]`: the tag is resolved once and its digest
   * pinned in grail.lock; `registry` names the project's registry settings (auth, CA) when the host is its */
  | { kind: 'registry'; ref: string }

export type Step =
  /** sources are relative to the build context; `to` is an absolute path in the image */
  | { kind: 'copy'; from: string[]; to: string; owner?: string; mode?: number; exclude: string[] }
  /** `argv` is exec'd as is; a string in the spec becomes ['/bin/sh', '-c', string] */
  | { kind: 'run'; argv: string[]; network: boolean; env: Record<string, string> }
  | { kind: 'env'; env: Record<string, string> }
  | { kind: 'user'; user: string }
  | { kind: 'workdir'; path: string }
  | { kind: 'entrypoint'; argv: string[] }
  | { kind: 'cmd'; argv: string[] }
  | { kind: 'expose'; ports: Array<{ port: number; protocol: 'tcp' | 'udp' }> }
  | { kind: 'volume'; paths: string[] }
  | { kind: 'label'; labels: Record<string, string> }
  | { kind: 'healthcheck'; check: HealthCheck }

export type StepKind = Step['kind']

/** Resource limits of an instance or a build `run` step; undefined means no limit. */
export interface Resources {
  /** bytes */
  memory?: number
  /** CPU time in CPUs per scheduling period */
  cpus?: number
  /** processes and threads at once */
  pids?: number
}

export interface ImageSpec {
  name: string
  base: BaseSource
  /** absolute build context directory (default: the spec's directory) */
  context: string
  steps: Step[]
  /** mtime clamp for every layer, seconds since the epoch (SOURCE_DATE_EPOCH, else 1) */
  sourceDateEpoch?: number
  /** limits of each `run` step */
  resources?: Resources
}

export interface VolumeSpec {
  name: string
  /** absolute mount path inside the instance */
  path: string
  /** only one instance may hold it at a time (forces order: stop-first) */
  exclusive: boolean
}

export interface RolloutSpec {
  strategy: 'rolling' | 'blue-green' | 'canary'
  maxSurge: number
  maxUnavailable: number
  order: 'start-first' | 'stop-first'
  /** ms to keep the old set (blue-green) or the canary (canary) before finishing */
  bake: number
  canary?: { instances?: number; percent?: number }
  /** ms to wait for an instance to become healthy before the gate fails */
  healthTimeout: number
  /** ms to drain connections from an instance before stopping it */
  drain: number
}

/** What apply and the reconciler do with unexplained drift: replace, record an event, or nothing. */
export type DriftPolicy = 'fix' | 'report' | 'ignore'

export interface RecycleSpec {
  maxAge?: number
  jitter: number
  window?: string
  order: 'oldest' | 'most-drifted'
}

export interface CrashLoopSpec {
  restarts: number
  window: number
  backoff: number
  maxBackoff: number
}

export interface ServiceSpec {
  name: string
  image: string
  replicas: number
  /** port the process listens on inside the instance (given to it as PORT) */
  port?: number
  /** public port of the proxy in front of the instances */
  publish?: {
    port: number
    host: string
    /** TLS termination: PEM files, relative to the spec's directory */
    tls?: { certificate: string; key: string }
    /** ms a request may wait for its response header before a retry elsewhere (idempotent) or 504 */
    responseTimeout?: number
    /** one JSON line per request in the data plane's access log */
    accessLog?: boolean
  }
  env: Record<string, string>
  /** deploy-time files: absolute path in the instance → content */
  files: Record<string, string>
  /** env keys and deploy-file paths the spec marks `secret` (redacted, never printed) */
  secret?: { env: string[]; files: string[] }
  volumes: VolumeSpec[]
  healthcheck?: HealthCheck
  rollout: RolloutSpec
  drift: { ignore: string[]; policy: DriftPolicy }
  recycle: RecycleSpec
  crashLoop: CrashLoopSpec
  /** limits of each instance */
  resources?: Resources
  /** 'private': a network namespace per instance; 'host': the host's */
  network: 'private' | 'host'
  /** 'private': a user namespace maps the instance's ids to an unprivileged host range; 'host': none */
  userns: 'private' | 'host'
}

export interface EnvironmentSpec {
  name: string
  /** a provider name; the runtime factory refuses one this Grail does not have */
  provider: string
  /** provider connection (docker/podman socket, swarm manager) */
  endpoint?: string
  /** per-service overrides, already merged into `services` */
  services: Record<string, ServiceSpec>
  /** the registry this environment pulls from (its own `registry:`, else the project's) */
  registry?: RegistrySpec
}

/** Where credentials for a registry come from; none of them is ever written by Grail. */
export type RegistryAuth =
  /** `~/.docker/config.json` `auths` when it has the host, else anonymous */
  | { kind: 'auto' }
  | { kind: 'none' }
  /** names of the environment variables that hold the user and the password */
  | { kind: 'env'; username: string; password: string }
  /** an absolute path: a docker config.json (`auths`), or `{"username": …, "password": …}`; refused
   * when group- or world-readable */
  | { kind: 'file'; path: string }

/** `registry:` (project level, or per environment). */
export interface RegistrySpec {
  /** `https://host[:port]`, or `http://…` (loopback, or with `insecure`) */
  url: string
  /** `host[:port]`, lower case */
  host: string
  /** repository prefix: image `web` lives at `host/prefix/web` (default: the project's name) */
  prefix: string
  auth: RegistryAuth
  /** absolute path of a PEM CA bundle to trust for this registry */
  ca?: string
  /** plain http to a host that is not loopback */
  insecure: boolean
  /** the shared build cache: `from` reads step layers from the registry, `to` pushes them there */
  cache: { from: boolean; to: boolean }
}

export interface PolicySpec {
  gc: { keepVersions: number; keepDeployedWithin: number; keepReleases: number }
  disruptionBudget: { maxUnavailable: number; minHealthy: number }
  hotfix: { maxTtl: number; requireReason: boolean }
  /** env keys (globs, any case) whose values are secrets wherever they appear */
  redact?: { keys: string[] }
  /** how often the Debian archive is checked for newer packages, and what a finding triggers */
  patch?: PatchPolicy
}

/** `policies.patch`: see src/server/patch.ts. */
export interface PatchPolicy {
  /** ms between checks (and the longest a cached archive index is trusted) */
  interval: number
  action: 'report' | 'build' | 'deploy'
  /** with action `deploy`: the environments patched images are applied to */
  deploy?: string[]
  /** act on security updates only */
  security: boolean
}

export interface Project {
  name: string
  /** absolute path of the spec file */
  file: string
  /** absolute directory of the spec file */
  dir: string
  images: Record<string, ImageSpec>
  services: Record<string, ServiceSpec>
  environments: Record<string, EnvironmentSpec>
  policies: PolicySpec
  /** where `grail push` sends images and builds find a shared cache */
  registry?: RegistrySpec
}
