import { own, type Data } from '../store/index.js';
import { failJob } from './fail-job.js';
import type { RetryPolicy } from './lease.js';
import { requeueJob } from './requeue-job.js';
import type { Transition } from './transition.js';
import { unassignJob } from './unassign-job.js';

/**
 * The holder is gone (worker dead, left or replaced). A job it had started goes back to the queue as a
 * failed attempt (or fails after its last one); a job it never accepted costs nothing, and neither does one
 * released with `charged` false (the controller was overloaded: see requeueJob).
 */
export function releaseJob(
  data: Data,
  jobId: string,
  workerId: string,
  leaseId: string,
  reason: string,
  policy: RetryPolicy,
  now: number,
  charged = true,
): Transition {
  if (own(data.jobs, jobId)?.state === 'assigned') return unassignJob(data, jobId, workerId, leaseId, now);
  if (!charged) return requeueJob(data, jobId, workerId, leaseId, reason, now);
  return failJob(data, jobId, workerId, leaseId, reason, true, policy, now);
}
