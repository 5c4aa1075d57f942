import { own, type Data, type Job } from '../store/index.js';
import { failJob } from './fail-job.js';
import type { RetryPolicy } from './lease.js';
import { unassignJob } from './unassign-job.js';

/**
 * The holder is gone (lease expired, worker dead or replaced). A job it had started goes back to the
 * queue as a failed attempt (or fails after its last one); a job it never accepted costs nothing.
 */
export function releaseJob(
  data: Data,
  jobId: string,
  workerId: string,
  leaseId: string,
  reason: string,
  policy: RetryPolicy,
  now: number,
): Job | null {
  if (own(data.jobs, jobId)?.state === 'assigned') return unassignJob(data, jobId, workerId, leaseId, now);
  return failJob(data, jobId, workerId, leaseId, reason, true, policy, now);
}
