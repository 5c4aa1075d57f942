import type { BackoffPolicy } from '../../common/backoff.js';
import type { Job, JobState } from '../store/index.js';
import type { Refusal } from './transition.js';

/** The compare-and-set every transition of a leased job starts with: a stale holder changes nothing. */
export function holdsLease(job: Job | undefined, workerId: string, leaseId: string): job is Job {
  return !!job && !!job.lease && job.lease.worker_id === workerId && job.lease.lease_id === leaseId;
}

/** States in which a job holds a lease. */
export const LEASED_STATES: readonly JobState[] = ['assigned', 'running'];

/** Why the holder of (workerId, leaseId) may not move this job now, or null when it may. */
export function holderRefusal(
  job: Job | undefined,
  workerId: string,
  leaseId: string,
  from: readonly JobState[] = LEASED_STATES,
): Refusal | null {
  if (!job) return 'no_job';
  if (job.state === 'cancelled') return 'cancelled';
  if (!holdsLease(job, workerId, leaseId)) return 'lease_moved';
  return from.includes(job.state) ? null : 'wrong_state';
}

export interface RetryPolicy {
  maxAttempts: number;
  /** The wait before a failed attempt's job may run again. */
  backoff: BackoffPolicy;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 5, backoff: { baseMs: 500, maxMs: 30_000 } };
