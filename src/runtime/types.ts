/**
 * The one interface every runtime provider implements (local runc, docker/podman, swarm). Providers know
 * nothing of plans, releases as rows, or the database: they create, observe and destroy instances, and
 * every instance carries labels that tie it back to its project, environment, service and release, so
 * `list` finds what state does not know about.
 */
import type { Readable } from 'node:stream'
import type { Digest } from '../oci/digest.js'
import type { FileEntry } from '../oci/file-manifest.js'
import type { Resources } from '../spec/types.js'

export interface InstanceLabels {
  project: string
  environment: string
  service: string
  /** release number within the service */
  release: number
}

export interface ImageRef {
  /** image name and version, for messages */
  name: string
  version: number
  /** manifest digest: what the instance runs */
  digest: Digest
}

export interface VolumeMount {
  /** declared volume name; the provider keeps its data across instances */
  name: string
  /** absolute path inside the instance */
  path: string
}

export interface InstanceSpec {
  /** unique, validated before use: ^[a-z0-9][a-z0-9-]{0,62}$ */
  id: string
  labels: InstanceLabels
  image: ImageRef
  /** merged env: image env, then release env, then PORT */
  env: Record<string, string>
  /** deploy-time files (absolute path in the instance → content), mounted read-only */
  files: Record<string, string>
  volumes: VolumeMount[]
  /** the port the process listens on inside the instance; the provider decides the host side */
  port?: number
  /** limits the provider enforces (memory, CPU time, processes) */
  resources?: Resources
  /** 'private' (default): its own network namespace, reached at `endpoint()`; 'host': the host's */
  network?: 'private' | 'host'
  /** 'private' (default): root in the instance is an unprivileged host uid; 'host': the host's root */
  userns?: 'private' | 'host'
}

export interface InstanceHandle {
  id: string
  provider: string
}

export type InstanceState = 'created' | 'running' | 'stopped' | 'missing'

export interface InstanceObservation {
  id: string
  labels: InstanceLabels
  state: InstanceState
  imageDigest: Digest
  env: Record<string, string>
  mounts: Array<{ source: string; destination: string }>
  pid?: number
  /** ISO time the process started */
  startedAt?: string
  exitCode?: number
  /** in a user namespace: the host id its root maps to (its image's lower dirs are copies shifted by it) */
  idBase?: number
}

export interface FileChange {
  kind: 'A' | 'C' | 'D'
  /** absolute path inside the instance */
  path: string
  /** what is there now (A and C), with the sha256 of a regular file's content */
  current?: CurrentFile
}

/**
 * A path as it is in the instance now: the fields of an image's file manifest entry. Its content is
 * read through `RuntimeProvider.readFile`, never from a host path (a provider's files need not be on
 * this machine).
 */
export type CurrentFile = Omit<FileEntry, 'path'>

export interface ExecResult {
  code: number
  stdout: string
  stderr: string
}

export interface Scope {
  project: string
  environment?: string
  service?: string
}

export interface RuntimeProvider {
  readonly name: string
  /**
   * Refuses an id this provider cannot give an instance (before it reaches a path, an argv or an API
   * call): a GrailError BAD_INSTANCE_ID naming the id and the rule. The contract's rule is
   * `^[a-z0-9][a-z0-9-]{0,62}$`; a provider may reserve more.
   */
  checkId(id: string): void
  /** unpack / load / pull the image so create is fast; idempotent */
  prepareImage(image: ImageRef): Promise<void>
  /** always a fresh instance; state of it is recorded by the provider before anything is started */
  create(spec: InstanceSpec): Promise<InstanceHandle>
  start(h: InstanceHandle): Promise<void>
  /** SIGTERM, then SIGKILL after graceMs */
  stop(h: InstanceHandle, opts: { graceMs: number }): Promise<void>
  /** removes the instance and everything of it but its volumes; idempotent */
  destroy(h: InstanceHandle): Promise<void>
  /** what really exists in this scope, including instances state does not know about */
  list(scope: Scope): Promise<InstanceObservation[]>
  /**
   * Tells `onChange` soon after something in the scope may have changed by itself: an instance's process
   * exited, a file changed inside one, an instance appeared or went. A hint to look again (with `list`,
   * `diff`), never the observation itself; a provider without events of its own leaves it out and its
   * callers poll.
   */
  watch?(scope: Scope, onChange: (why: string) => void): { close(): void }
  inspect(h: InstanceHandle): Promise<InstanceObservation>
  /** added, changed and deleted paths against the image, volumes and deploy files excluded */
  diff(h: InstanceHandle): Promise<FileChange[]>
  exec(h: InstanceHandle, argv: string[]): Promise<ExecResult>
  /** where to reach `port` of the instance from this machine */
  endpoint(h: InstanceHandle, port: number): Promise<{ host: string; port: number }>
  /** the instance's captured stdout and stderr, oldest first */
  logs(h: InstanceHandle, opts?: { tailLines?: number }): Promise<string>
  /**
   * The content of a regular file of the instance as it is now (what `diff` reports as added or
   * changed, or the image's own), as a stream. `path` is absolute inside the instance; it never resolves
   * outside the instance's filesystem. A missing path, a directory or anything but a regular file is a
   * GrailError naming the instance and the path.
   */
  readFile(h: InstanceHandle, path: string): Promise<Readable>
  /**
   * Removes what killed runs of this provider left half made (an instance whose create never finished,
   * with nothing recorded to tell what it is), in this project; returns what it cleaned, for the event
   * log. Instances with a record are left to `list` (state 'missing') and `destroy`.
   */
  reconcile(scope: Scope): Promise<string[]>
  /** removes the data of an environment's volumes (which `destroy` keeps); idempotent; returns their names */
  removeVolumes(scope: Scope & { environment: string }): Promise<string[]>
  /**
   * Stops and destroys every instance this provider has for Grail's home, whatever state says of it
   * (for starting over when state is lost); volumes stay. Returns the ids it removed.
   */
  destroyAll(opts: { graceMs: number }): Promise<string[]>
}
