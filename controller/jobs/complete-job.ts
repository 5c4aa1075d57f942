import { own, type Data } from '../store/index.js';
import { holdsLease } from './lease.js';

/** running -> done, only for the current lease holder whose filtered image is recorded. */
export function completeJob(
  data: Data,
  jobId: string,
  workerId: string,
  leaseId: string,
  filteredImageId: string,
  now: number,
): boolean {
  const job = own(data.jobs, jobId);
  if (!holdsLease(job, workerId, leaseId) || (job.state !== 'running' && job.state !== 'assigned')) return false;
  const filtered = own(data.images, filteredImageId);
  if (!filtered || filtered.source_image_id !== job.image_id || filtered.type !== 'filtered') return false;
  const stamp = new Date(now).toISOString();
  job.state = 'done';
  job.lease = null;
  job.error = null;
  job.filtered_image_id = filteredImageId;
  job.updated_at = stamp;
  job.finished_at = stamp;
  return true;
}
