import type { ExecEnv } from '../rollout/types.js'

/**
 * An environment opened for planning and applying: what the executor needs (state, the provider, the
 * routers, the hooks) plus what planning reads (the lock).
 */
export interface EngineEnv extends ExecEnv {
  /** `apply --locked`: the image digests of grail.lock, by image name, instead of the newest builds */
  locked?: Record<string, { name: string; version: number; digest: string }>
  /** `grail drift --fix`: plan replaces every drifted instance, whatever its service's drift.policy */
  fixAllDrift?: boolean
}
