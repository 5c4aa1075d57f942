import { backoffMs } from '../../common/backoff.js';
import { own, type Data } from '../store/index.js';
import { holderRefusal, type RetryPolicy } from './lease.js';
import { applied, refused, stamp, type Transition } from './transition.js';

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
): Transition {
  const job = own(data.jobs, jobId);
  const refusal = holderRefusal(job, workerId, leaseId);
  if (refusal || !job) return refused(refusal ?? 'no_job');
  const at = stamp(job, now);
  job.lease = null;
  job.error = error;
  if (!retryable || job.attempts >= policy.maxAttempts) {
    job.state = 'failed';
    job.finished_at = at;
  } else {
    job.state = 'queued';
    job.not_before = now + backoffMs(policy.backoff, job.attempts);
  }
  return applied(job);
}
