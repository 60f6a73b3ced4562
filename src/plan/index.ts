export { expiredHotfix, plan, type PlanInput } from './plan.js'
export { desiredService, desiredServices } from './desired.js'
export { dueForRecycle, inWindow, type RecycleCandidate } from './recycle.js'
export { nextDeadline, nextWindowOpen } from './deadline.js'
export { configBundleOf, configDigest, type ConfigBundle } from './config-bundle.js'
export { choosePromoted, promotedReleases, type PromotedChoice } from './promoted.js'
export { rollbackTarget, type RollbackChoice } from './rollback.js'
export { type CrashLoop, crashLoopOf, type RestartView } from './crash-loop.js'
export type {
  Action,
  Blocked,
  DeployCause,
  DesiredService,
  DriftFact,
  DriftKept,
  HotfixView,
  ImageView,
  InstanceView,
  PendingBuild,
  Plan,
  ReleaseView,
  ServiceFacts,
  Waiting,
} from './types.js'
export { concealBundle, HIDDEN, projectSecrets, type ProjectSecrets, redactKeys } from './secrets.js'
