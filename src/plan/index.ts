export { plan, type PlanInput } from './plan.js'
export { configBundleOf, configDigest, type ConfigBundle } from './config-bundle.js'
export type { Action, DesiredService, InstanceView, Plan, ReleaseView } from './types.js'
export { concealBundle, HIDDEN, projectSecrets, type ProjectSecrets, redactKeys } from './secrets.js'
