export { createJob } from './create-job.js';
export { assignJob } from './assign-job.js';
export { startJob } from './start-job.js';
export { renewLease } from './renew-lease.js';
export { completeJob } from './complete-job.js';
export { failJob } from './fail-job.js';
export { releaseJob } from './release-job.js';
export { expireLeases } from './expire-leases.js';
export { holdsLease, backoffMs, DEFAULT_RETRY_POLICY, type RetryPolicy } from './lease.js';
