export {
  type CachedBase,
  type CachedLayer,
  getCachedBase,
  getCachedLayer,
  putCachedBase,
  putCachedLayer,
} from './cache.js'
export { type Db, nowIso, openDb, type OpenDbOptions } from './db.js'
export { isCorruption, RESET_COMMAND, stateLeftovers } from './guard.js'
export {
  appendEvent,
  currentActor,
  type EventPage,
  eventPage,
  type EventRecord,
  listEvents,
  redactorOf,
  useRedactor,
} from './events.js'
export {
  finishHotfix,
  type HotfixChange,
  type HotfixRecord,
  type HotfixStatus,
  insertHotfix,
  listHotfixes,
  markInterruptedHotfixes,
} from './hotfixes.js'
export {
  buildInputsOf,
  type BuildInputs,
  findImageByKey,
  recordImageVersion,
  getImage,
  type ImageRecord,
  type ImageStatus,
  insertImage,
  setImageStatus,
  childrenOf,
  markCollected,
  recordedImageBlobs,
  pinnedDigests,
  pinImage,
  unpinImage,
  latestImage,
  listImages,
  revokedDigests,
  type PackageInfo,
} from './images.js'
export {
  type InstancePhase,
  type InstanceRecord,
  liveInstances,
  recordInstance,
  setInstancePhase,
} from './instances.js'
export { lastProbes, type ProbeRecord, recordProbe } from './health.js'
export {
  clearRestarts,
  listRestarts,
  recordRestart,
  type RestartCause,
  type RestartRecord,
} from './restarts.js'
export { type ProjectMeta, projectMeta, recordProjectMeta, servicesInState } from './meta.js'
export { acquireLock, type LockHolder, releaseLock, waitForLock } from './locks.js'
export {
  insertRelease,
  listReleases,
  allReleases,
  type ReleaseRecord,
  type ReleaseStatus,
  setReleaseStatus,
} from './releases.js'
export {
  checkTokenName,
  createToken,
  hashToken,
  listTokens,
  revokeToken,
  TOKEN_PREFIX,
  TOKEN_SCOPES,
  type TokenRecord,
  type TokenScope,
  touchToken,
  verifyToken,
} from './tokens.js'
