import { own, type Data, type Job } from '../store/index.js';
import { backoffMs } from '../../common/backoff.js';
import { holdsLease, type RetryPolicy } from './lease.js';

/**
 * The holder reports a failure. A poison input (not retryable) or the last attempt fails the job
 * for good, with its error kept; anything else goes back to the queue after a backoff.
 */
export function failJob(
  data: Data,
  jobId: string,
  workerId: string,
  leaseId: string,
  error: string,
  retryable: boolean,
  policy: RetryPolicy,
  now: number,
): Job | null {
  const job = own(data.jobs, jobId);
  if (!holdsLease(job, workerId, leaseId) || (job.state !== 'running' && job.state !== 'assigned')) return null;
  const stamp = new Date(now).toISOString();
  job.lease = null;
  job.error = error;
  job.updated_at = stamp;
  if (!retryable || job.attempts >= policy.maxAttempts) {
    job.state = 'failed';
    job.finished_at = stamp;
  } else {
    job.state = 'queued';
    job.not_before = now + backoffMs(policy.backoff, job.attempts);
  }
  return job;
}
