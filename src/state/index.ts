export { openDb, nowIso, type Db } from './db.js'
export { appendEvent, listEvents, currentActor, type EventRecord } from './events.js'
export {
  listImages,
  latestImage,
  getImage,
  findImageByKey,
  insertImage,
  type ImageRecord,
  type ImageStatus,
  type PackageInfo,
} from './images.js'
export {
  getCachedLayer,
  putCachedLayer,
  getCachedBase,
  putCachedBase,
  type CachedLayer,
  type CachedBase,
} from './cache.js'
export { acquireLock, releaseLock, type LockHolder } from './locks.js'
export {
  insertRelease,
  setReleaseStatus,
  listReleases,
  type ReleaseRecord,
  type ReleaseStatus,
} from './releases.js'
export {
  recordInstance,
  setInstancePhase,
  liveInstances,
  type InstanceRecord,
  type InstancePhase,
} from './instances.js'
