import type { Job } from '../store/index.js';

/** The compare-and-set every transition of a leased job starts with: a stale holder changes nothing. */
export function holdsLease(job: Job | undefined, workerId: string, leaseId: string): job is Job {
  return !!job && !!job.lease && job.lease.worker_id === workerId && job.lease.lease_id === leaseId;
}

export interface RetryPolicy {
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 5, backoffBaseMs: 500, backoffMaxMs: 30_000 };

/** Exponential backoff with jitter: between half and all of base * 2^(attempt-1), capped. */
export function backoffMs(policy: RetryPolicy, attempts: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
