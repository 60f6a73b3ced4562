/**
 * Runtime providers: the `RuntimeProvider` interface every engine implements, and the providers. The
 * contract suite every provider passes is in `./contract.js` (it registers node:test cases, so it is not
 * re-exported here).
 */
export type * from './types.js'
export { createProvider, createProviderNamed, homeProviders, PROVIDERS, requireProvider } from './factory.js'
export type { ProviderDeps, ProviderName } from './factory.js'
export {
  createLocalProvider,
  destroyAllLocal,
  oldestLocalInstance,
  reconcileLocal,
  type LocalProviderOptions,
} from './local/index.js'
