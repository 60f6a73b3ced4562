import type { Digest } from './digest.js'

export interface Descriptor {
  mediaType: string
  digest: Digest
  size: number
  annotations?: Record<string, string>
  platform?: { architecture: string; os: string }
}

export interface Manifest {
  schemaVersion: 2
  mediaType: string
  config: Descriptor
  layers: Descriptor[]
  annotations?: Record<string, string>
}

export interface ImageIndex {
  schemaVersion: 2
  mediaType?: string
  manifests: Descriptor[]
}

/** The runtime part of an OCI image config (`config` key). */
export interface ContainerConfig {
  User?: string
  ExposedPorts?: Record<string, Record<string, never>>
  Env?: string[]
  Entrypoint?: string[]
  Cmd?: string[]
  Volumes?: Record<string, Record<string, never>>
  WorkingDir?: string
  Labels?: Record<string, string>
  StopSignal?: string
}

export interface HistoryEntry {
  created?: string
  created_by?: string
  comment?: string
  empty_layer?: boolean
}

export interface ImageConfig {
  created?: string
  architecture: string
  os: string
  config: ContainerConfig
  rootfs: { type: 'layers'; diff_ids: Digest[] }
  history?: HistoryEntry[]
}
