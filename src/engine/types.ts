import type { ExecEnv } from '../rollout/types.js'

/**
 * An environment opened for planning and applying: what the executor needs (state, the provider, the
 * routers, the hooks) plus what planning reads (the lock) and provider-level cleanup.
 */
export interface EngineEnv extends ExecEnv {
  /** `apply --locked`: the image digests of grail.lock, by image name, instead of the newest builds */
  locked?: Record<string, { name: string; version: number; digest: string }>
  /** provider-level cleanup of what a killed run left (half-created instance dirs); names what it removed */
  reconcile?: () => Promise<string[]>
}

/** The name the CLI used before the engine existed. */
export type ApplyEnv = EngineEnv
