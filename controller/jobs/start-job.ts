import { own, type Data } from '../store/index.js';
import { holdsLease } from './lease.js';

/** assigned -> running: the worker accepted the job. */
export function startJob(
  data: Data,
  jobId: string,
  workerId: string,
  leaseId: string,
  leaseMs: number,
  now: number,
): boolean {
  const job = own(data.jobs, jobId);
  if (!holdsLease(job, workerId, leaseId) || job.state !== 'assigned') return false;
  job.state = 'running';
  job.lease = { ...job.lease!, expires_at: now + leaseMs };
  job.updated_at = new Date(now).toISOString();
  return true;
}
