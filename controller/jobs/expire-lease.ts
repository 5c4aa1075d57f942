import { own, type Data } from '../store/index.js';
import type { RetryPolicy } from './lease.js';
import { releaseJob } from './release-job.js';
import { refused, type Transition } from './transition.js';

/**
 * The stalled-job rule for one job: a lease past its expiry is released, whoever holds it. `graceMs` moves the
 * expiry later (the controller's own stalls since the lease was last renewed); `charged` false releases it
 * at no cost in attempts (the controller was overloaded).
 */
export function expireLease(
  data: Data,
  jobId: string,
  policy: RetryPolicy,
  now: number,
  graceMs = 0,
  charged = true,
): Transition {
  const job = own(data.jobs, jobId);
  if (!job) return refused('no_job');
  const lease = job.lease;
  if (!lease) return refused('wrong_state');
  if (lease.expires_at + graceMs > now) return refused('lease_live');
  const reason = `lease expired: worker ${lease.worker_id} stopped renewing it`;
  return releaseJob(data, jobId, lease.worker_id, lease.lease_id, reason, policy, now, charged);
}
