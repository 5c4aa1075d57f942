import { randomUUID } from 'node:crypto';
import { own, type Data, type Lease } from '../store/index.js';

/** queued -> assigned: the job is leased to a worker. Null when it is not (or not yet) queued. */
export function assignJob(data: Data, jobId: string, workerId: string, leaseMs: number, now: number): Lease | null {
  const job = own(data.jobs, jobId);
  if (job?.state !== 'queued' || job.not_before > now) return null;
  job.lease = { worker_id: workerId, lease_id: randomUUID(), expires_at: now + leaseMs };
  job.state = 'assigned';
  job.attempts += 1;
  job.updated_at = new Date(now).toISOString();
  return job.lease;
}
