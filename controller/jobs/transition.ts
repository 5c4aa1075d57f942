import type { Job } from '../store/index.js';

/**
 * Why a transition changed nothing. Every refusal is an expected outcome of a race (a late worker, a
 * second request), not an error: callers log and count it by reason, and go on.
 */
export const REFUSALS = [
  /** No job has that id. */
  'no_job',
  /** The caller does not hold the job's current lease: it expired, was released or was given to another. */
  'lease_moved',
  /** The job was cancelled (its workload was cancelled or deleted): nothing of it may come back. */
  'cancelled',
  /** The job is not in a state this transition starts from (already done, not failed, ...). */
  'wrong_state',
  /** The queued job is still waiting out its retry backoff. */
  'in_backoff',
  /** The lease has not expired: nothing to release. */
  'lease_live',
  /** The running job has not reached the job timeout: nothing to time out. */
  'in_time',
  /** The filtered image offered as the job's result is not a filtered image of the job's original. */
  'wrong_result',
] as const;
export type Refusal = (typeof REFUSALS)[number];

/** What a transition did: the job as it is now, or why nothing changed. */
export type Transition = { ok: true; job: Job } | { ok: false; refusal: Refusal };

export function applied(job: Job): Transition {
  return { ok: true, job };
}

export function refused(refusal: Refusal): Transition {
  return { ok: false, refusal };
}

export function stamp(job: Job, now: number): string {
  const at = new Date(now).toISOString();
  job.updated_at = at;
  return at;
}
