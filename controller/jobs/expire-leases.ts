import type { Data, Job } from '../store/index.js';
import type { RetryPolicy } from './lease.js';
import { releaseJob } from './release-job.js';

/** The stalled-job sweep: every lease past its expiry is released. */
export function expireLeases(data: Data, policy: RetryPolicy, now: number): Job[] {
  const released: Job[] = [];
  for (const job of Object.values(data.jobs)) {
    const lease = job.lease;
    if (!lease || lease.expires_at > now) continue;
    const reason = `lease expired: worker ${lease.worker_id} stopped renewing it`;
    const result = releaseJob(data, job.id, lease.worker_id, lease.lease_id, reason, policy, now);
    if (result) released.push(result);
  }
  return released;
}
