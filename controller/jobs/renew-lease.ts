import { own, type Data } from '../store/index.js';
import { holdsLease } from './lease.js';

/** A heartbeat that names the job keeps its lease alive. Not persisted: leases are re-granted after a restart. */
export function renewLease(
  data: Data,
  jobId: string,
  workerId: string,
  leaseId: string,
  leaseMs: number,
  now: number,
): boolean {
  const job = own(data.jobs, jobId);
  if (!holdsLease(job, workerId, leaseId)) return false;
  job.lease!.expires_at = Math.max(job.lease!.expires_at, now + leaseMs);
  return true;
}
