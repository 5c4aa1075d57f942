import { randomUUID } from 'node:crypto';
import { own, type Data } from '../store/index.js';
import { applied, refused, stamp, type Transition } from './transition.js';

/** queued -> assigned: the job is leased to a worker, and one more attempt is counted. */
export function assignJob(data: Data, jobId: string, workerId: string, leaseMs: number, now: number): Transition {
  const job = own(data.jobs, jobId);
  if (!job) return refused('no_job');
  if (job.state !== 'queued') return refused('wrong_state');
  if (job.not_before > now) return refused('in_backoff');
  job.lease = { worker_id: workerId, lease_id: randomUUID(), expires_at: now + leaseMs };
  job.state = 'assigned';
  job.attempts += 1;
  stamp(job, now);
  return applied(job);
}
