export { plan, type PlanInput } from './plan.js'
export { configBundleOf, configDigest, type ConfigBundle } from './config-bundle.js'
export { type CrashLoop, crashLoopOf, type RestartView } from './crash-loop.js'
export type {
  Action,
  DesiredService,
  InstanceView,
  PendingBuild,
  Plan,
  ReleaseView,
  Waiting,
} from './types.js'
export { concealBundle, HIDDEN, projectSecrets, type ProjectSecrets, redactKeys } from './secrets.js'
