export { plan, type PlanInput } from './plan.js'
export { configBundleOf, configDigest, type ConfigBundle } from './config-bundle.js'
export { type CrashLoop, crashLoopOf, type RestartView } from './crash-loop.js'
export type { Action, DesiredService, InstanceView, Plan, ReleaseView, Waiting } from './types.js'
