import { own, type Data, type Lease } from '../store/index.js';
import { holderRefusal } from './lease.js';
import { applied, refused, stamp, type Transition } from './transition.js';

/** assigned -> running: the worker accepted the job; its lease, and its run (started_at), run from now. */
export function startJob(
  data: Data,
  jobId: string,
  workerId: string,
  leaseId: string,
  leaseMs: number,
  now: number,
): Transition {
  const job = own(data.jobs, jobId);
  const refusal = holderRefusal(job, workerId, leaseId, ['assigned']);
  if (refusal || !job) return refused(refusal ?? 'no_job');
  job.state = 'running';
  job.lease = { ...(job.lease as Lease), expires_at: now + leaseMs };
  job.started_at = stamp(job, now);
  return applied(job);
}
