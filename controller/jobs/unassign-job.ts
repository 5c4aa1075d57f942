import { own, type Data, type Job } from '../store/index.js';
import { holdsLease } from './lease.js';

/**
 * assigned -> queued, as if never assigned: the worker declined (it was busy) or could not be
 * reached. Not the job's fault, so it costs no attempt and no backoff.
 */
export function unassignJob(data: Data, jobId: string, workerId: string, leaseId: string, now: number): Job | null {
  const job = own(data.jobs, jobId);
  if (!holdsLease(job, workerId, leaseId) || job.state !== 'assigned') return null;
  job.state = 'queued';
  job.lease = null;
  job.attempts = Math.max(0, job.attempts - 1);
  job.updated_at = new Date(now).toISOString();
  return job;
}
