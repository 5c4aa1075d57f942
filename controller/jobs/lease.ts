import type { BackoffPolicy } from '../../common/backoff.js';
import type { Job } from '../store/index.js';

/** The compare-and-set every transition of a leased job starts with: a stale holder changes nothing. */
export function holdsLease(job: Job | undefined, workerId: string, leaseId: string): job is Job {
  return !!job && !!job.lease && job.lease.worker_id === workerId && job.lease.lease_id === leaseId;
}

export interface RetryPolicy {
  maxAttempts: number;
  /** The wait before a failed attempt's job may run again. */
  backoff: BackoffPolicy;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 5, backoff: { baseMs: 500, maxMs: 30_000 } };
