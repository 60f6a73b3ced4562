export { runBuild, type BuildRequest, type BuildOutcome } from './engine.js'
export {
  buildImage,
  buildOrder,
  DEFAULT_EPOCH,
  type BuildEvent,
  type BuiltImage,
  type StepReport,
} from './builder.js'
export { compareImages, type VerifyReport, type FileDifference } from './verify.js'
export { cleanStaleWork } from './stale.js'
export { HEALTHCHECK_LABEL } from './config-steps.js'
export { mmdebstrapCommand } from './base-debian.js'
export { currentImages, whatChanged, type CurrentImage } from './current.js'
export type { RemoteCache } from './remote-cache.js'
