export { challengeScopes, parseWwwAuthenticate } from './challenge.js'
export type { AuthChallenge } from './challenge.js'
export { createRegistryClient, DOCKER_MANIFEST_LIST, MANIFEST_ACCEPT } from './client.js'
export { redactable, resolveCredentials } from './credentials.js'
export {
  checkManifestReference,
  checkRepository,
  formatReference,
  isValidRepository,
  isValidTag,
  parseReference,
} from './reference.js'
export { eachLimited, pullImage, pushImage } from './transfer.js'
export type { PullOptions, PushOptions } from './transfer.js'
export { isLoopback } from './transport.js'
export type {
  Credentials,
  FetchedManifest,
  RegistryClient,
  RegistryClientOptions,
  RegistryRef,
  TransferEvent,
} from './types.js'
