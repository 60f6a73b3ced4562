// container/: the runc and overlayfs code that both the builder's sandboxed `run` steps and the local
// provider's instances use: runc bundle configs and argv, the seccomp profile, overlay mounts over
// read-only snapshot dirs of image layers, and the process identity resolved against the image. It knows
// nothing of builds or providers: build/ and runtime/ import it, never the reverse.
export {
  type SandboxExtras,
  type SandboxProcess,
  INIT_PATH,
  overlayMountCommand,
  runcDeleteCommand,
  runcRunCommand,
  runtimeConfig,
  umountCommand,
} from './sandbox.js'
export { DEFAULT_PATH_ENV, resolveUser } from './process.js'
export {
  type LayerRef,
  emptySnapshot,
  ensureLowers,
  ensureSnapshot,
  lookupInLowers,
  RETIRED_PREFIX,
  snapshotPath,
} from './snapshots.js'
export { type SnapshotDamage, verifySnapshotDir } from './snapshot-verify.js'
