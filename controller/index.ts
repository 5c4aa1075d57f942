export { startController, type Controller, type ControllerEvents } from './controller.js';
export { rpcPortOf, sessionPortOf, type ControllerConfig } from './config.js';
export {
  DEFAULT_JOB_TIMEOUT_MS,
  DEFAULT_RETRY_POLICY,
  REFUSALS,
  type RetryPolicy,
  type Refusal,
  type Transition,
} from './jobs/index.js';
export {
  createWorkload,
  removeWorkload,
  findWorkload,
  viewWorkload,
  activeWorkloads,
  listWorkloads,
  expiresAt,
  workloadStatus,
  validateWorkloadName,
  DEFAULT_PAGE,
  MAX_PAGE,
  type WorkloadPage,
  type WorkloadView,
  type WorkloadStatus,
} from './workloads.js';
export {
  DEFAULT_MIN_PASSWORD_LENGTH,
  MAX_PASSWORD_LENGTH,
  validatePassword,
  validateUsername,
  type Users,
} from './users.js';
export type { Tokens, TokenClaims, TokenRef, TokenScope, UrlTokenPurpose } from './tokens.js';
export type { ImageLibrary, ImageTotals, IncomingContent, IncomingImage, ImageMime, ImageContent } from './images.js';
export type { ImageStoreConfig, OpenedObject, StoredObject } from './image-store/index.js';
export type { JobBook, JobChange, JobRefusal, TransitionName } from './job-book.js';
export type { Runnable } from './job-queue.js';
export { chainOf, missing, needsOf, type JobNeeds, type WorkerCan } from './workload-needs.js';
export { JOB_STATES, type JobCounts, type StateCounts, type WorkloadJobs } from './job-tally.js';
export type { LeaseSweeper } from './lease-sweeper.js';
export type { SchedulingPort, WorkerCandidate, ReadyJob, LeaseGrant, Outcome, RevokedLease } from './scheduling.js';
export type { Transfers, StoredResult } from './direct-transfers.js';
export type { OpenedSlot, SlotRequest, UploadSlots, UploadSlot } from './upload-slots.js';
export { originalKey } from './images.js';
export {
  removedView,
  type Lifecycle,
  type Removed,
  type DeleteReason,
  type DeletedTotals,
  type WorkloadEvent,
} from './lifecycle.js';
export {
  viewWorker,
  viewWorkerDetail,
  storedWorker,
  RECENT_SAMPLES,
  type LiveWorker,
  type WorkerRegistry,
  type WorkerHistory,
  type WorkerActivityBook,
  type ResourceSample,
  type WorkerState,
  type WorkerView,
  type WorkerDetailView,
} from './workers/index.js';
export { listWorkloadImages, filteredImages, type ImageView } from './image-views.js';
export type { Job, JobState, Workload, ImageRecord, WorkerRecord } from './store/index.js';
export { CommitOutcomeUnknown, own } from './store/index.js';
export {
  importLowdbIntoPostgres,
  openLeadership,
  parseDatastore,
  type DatastoreConfig,
  type ImportedCounts,
  type Leadership,
} from './store/index.js';
