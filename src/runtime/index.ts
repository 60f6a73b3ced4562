/**
 * Runtime providers: the `RuntimeProvider` interface every engine implements, and the providers. The
 * contract suite every provider passes is in `./contract.js` (it registers node:test cases, so it is not
 * re-exported here).
 */
export type * from './types.js'
export {
  createLocalProvider,
  destroyAllLocal,
  reconcileLocal,
  type LocalProviderOptions,
} from './local/index.js'
