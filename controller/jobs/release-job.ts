import type { Data, Job } from '../store/index.js';
import { failJob } from './fail-job.js';
import type { RetryPolicy } from './lease.js';

/** The holder is gone (lease expired, worker dead or replaced): the job goes back to the queue, or fails after its last attempt. */
export function releaseJob(data: Data, jobId: string, workerId: string, leaseId: string, reason: string, policy: RetryPolicy, now: number): Job | null {
  return failJob(data, jobId, workerId, leaseId, reason, true, policy, now);
}
