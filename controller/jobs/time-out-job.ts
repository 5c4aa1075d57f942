import { formatDuration } from '../../common/units.js';
import { own, type Data, type Job } from '../store/index.js';
import { failJob } from './fail-job.js';
import type { RetryPolicy } from './lease.js';
import { refused, type Transition } from './transition.js';

/**
 * The longest a job may run (--job-timeout): a 50-megapixel image on a slow machine, with its original and
 * result over a slow link, takes a few minutes; a worker gives up on its own after its --job-deadline (5 min).
 */
export const DEFAULT_JOB_TIMEOUT_MS = 10 * 60_000;

/**
 * When a running job's run passes the timeout (epoch ms), or null for a job that is not running. A record
 * written before `started_at` existed falls back to `updated_at`, which startJob set as well.
 */
export function overdueAt(job: Job, timeoutMs: number): number | null {
  if (job.state !== 'running') return null;
  return Date.parse(job.started_at ?? job.updated_at) + timeoutMs;
}

/**
 * running -> queued (or failed after its last attempt): the run has lasted the job timeout, however often its
 * holder renewed the lease (a heartbeat says the worker is alive, not that the job moves). Like any release
 * of a started job, it is a failed attempt; compare-and-set on the holder's lease, so a job that finished or
 * moved on meanwhile is left alone.
 */
export function timeOutJob(data: Data, jobId: string, timeoutMs: number, policy: RetryPolicy, now: number): Transition {
  const job = own(data.jobs, jobId);
  if (!job) return refused('no_job');
  const due = overdueAt(job, timeoutMs);
  const lease = job.lease;
  if (due === null || !lease) return refused('wrong_state');
  if (now < due) return refused('in_time');
  const ran = formatDuration(now - (due - timeoutMs));
  const reason =
    `ran too long: still running ${ran} after worker ${lease.worker_id} started it ` +
    `(job timeout ${formatDuration(timeoutMs)}, --job-timeout)`;
  return failJob(data, jobId, lease.worker_id, lease.lease_id, reason, true, policy, now);
}
