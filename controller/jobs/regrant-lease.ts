import type { Job } from '../store/index.js';
import { applied, refused, type Transition } from './transition.js';

/**
 * After a server restart, a held lease is good for one more lease period from now, so that its
 * worker has the time to come back and renew it; a worker that does not come back loses it then.
 */
export function regrantLease(job: Job, leaseMs: number, now: number): Transition {
  if (!job.lease) return refused('wrong_state');
  job.lease.expires_at = Math.max(job.lease.expires_at, now + leaseMs);
  return applied(job);
}
