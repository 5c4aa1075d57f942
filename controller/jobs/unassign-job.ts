import { own, type Data } from '../store/index.js';
import { holderRefusal } from './lease.js';
import { applied, refused, stamp, type Transition } from './transition.js';

/**
 * assigned -> queued, as if never assigned: the worker declined (it was busy) or could not be
 * reached. Not the job's fault, so it costs no attempt and no backoff.
 */
export function unassignJob(data: Data, jobId: string, workerId: string, leaseId: string, now: number): Transition {
  const job = own(data.jobs, jobId);
  const refusal = holderRefusal(job, workerId, leaseId, ['assigned']);
  if (refusal || !job) return refused(refusal ?? 'no_job');
  job.state = 'queued';
  job.lease = null;
  job.attempts = Math.max(0, job.attempts - 1);
  stamp(job, now);
  return applied(job);
}
