import { own, type Data } from '../store/index.js';
import { holderRefusal } from './lease.js';
import { applied, refused, stamp, type Transition } from './transition.js';

/**
 * assigned or running -> queued, at no cost: the holder was released while the controller itself was
 * overloaded (its sweep ran late, or its session socket was saturated), so a missed heartbeat or lease renewal
 * may have been the controller's fault, not the job's. The attempt is given back and there is no backoff;
 * the reason is kept in `error`.
 */
export function requeueJob(
  data: Data,
  jobId: string,
  workerId: string,
  leaseId: string,
  reason: string,
  now: number,
): Transition {
  const job = own(data.jobs, jobId);
  const refusal = holderRefusal(job, workerId, leaseId);
  if (refusal || !job) return refused(refusal ?? 'no_job');
  job.state = 'queued';
  job.lease = null;
  job.attempts = Math.max(0, job.attempts - 1);
  job.error = reason;
  stamp(job, now);
  return applied(job);
}
