export { openStore, type Store } from './store.js';
export { own } from './schema.js';
export type { Data, Job, JobState, Lease, User, RevokedToken, WorkerRecord, Workload, ImageRecord, ImageType } from './schema.js';
