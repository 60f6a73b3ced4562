// The local provider: runc + overlayfs, no daemon.
export type { LocalProviderOptions } from './provider.js'
export { createLocalProvider } from './provider.js'
export { reconcileLocal } from './lifecycle.js'
export { destroyAllLocal } from './wipe.js'
export { oldestLocalInstance } from './observe.js'
export { INSTANCE_ID, isInstanceId } from './layout.js'
export {
  runcCreateCommand,
  runcExecCommand,
  runcKillCommand,
  runcListCommand,
  runcStartCommand,
} from './runc.js'
