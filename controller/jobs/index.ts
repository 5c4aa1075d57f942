// Every job transition, one per file; each is a compare-and-set that returns what it did or why it
// did nothing. This folder is the only code that writes a job's fields.
export { createJob } from './create-job.js';
export { assignJob } from './assign-job.js';
export { startJob } from './start-job.js';
export { renewLease } from './renew-lease.js';
export { regrantLease } from './regrant-lease.js';
export { completeJob, type JobResult } from './complete-job.js';
export { failJob } from './fail-job.js';
export { releaseJob } from './release-job.js';
export { unassignJob } from './unassign-job.js';
export { requeueJob } from './requeue-job.js';
export { expireLease } from './expire-lease.js';
export { timeOutJob, overdueAt, DEFAULT_JOB_TIMEOUT_MS } from './time-out-job.js';
export { retryJob } from './retry-job.js';
export { cancelJob } from './cancel-job.js';
export { dropResult } from './drop-result.js';
export { deleteJob, isFinished } from './delete-job.js';
export { holdsLease, holderRefusal, LEASED_STATES, DEFAULT_RETRY_POLICY, type RetryPolicy } from './lease.js';
export { REFUSALS, type Refusal, type Transition } from './transition.js';
