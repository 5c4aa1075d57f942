import { own, type Data } from '../store/index.js';
import { holderRefusal } from './lease.js';
import { applied, refused, type Transition } from './transition.js';

/**
 * A heartbeat that names the job keeps its lease alive. Not journaled by itself: leases are
 * re-granted for one period after a restart anyway (regrantLease).
 */
export function renewLease(
  data: Data,
  jobId: string,
  workerId: string,
  leaseId: string,
  leaseMs: number,
  now: number,
): Transition {
  const job = own(data.jobs, jobId);
  const refusal = holderRefusal(job, workerId, leaseId);
  if (refusal || !job?.lease) return refused(refusal ?? 'no_job');
  job.lease.expires_at = Math.max(job.lease.expires_at, now + leaseMs);
  return applied(job);
}
