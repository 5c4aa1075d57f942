export { openStore, type StoreOptions } from './store.js';
export { openDatastore, openLeadership, parseDatastore, type DatastoreConfig } from './open-datastore.js';
export { importLowdbIntoPostgres, type ImportedCounts } from './import-datastore.js';
export type { Leader, LeaderAddress, Leadership } from './postgres/leadership.js';
export type { Store, StoreKind, StoreStats, RollbackListener, CommitOptions } from './tracked-store.js';
export { CommitOutcomeUnknown } from './tracked-store.js';
export { own, workerHistoryKey } from './schema.js';
export { DirectorySyncs } from './durable-file.js';
export type { OriginalsIndex } from './originals.js';
export { creationOrder, type WorkloadIndex } from './workload-index.js';
export type {
  Collection,
  Data,
  Job,
  JobState,
  Lease,
  User,
  RevokedToken,
  WorkerRecord,
  Workload,
  ImageRecord,
  ImageType,
  WorkerActivity,
  WorkerHour,
  WorkerMinute,
  WorkerSample,
  UploadSlotRecord,
} from './schema.js';
