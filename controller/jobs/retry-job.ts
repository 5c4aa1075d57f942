import { own, type Data } from '../store/index.js';
import { applied, refused, stamp, type Transition } from './transition.js';

/**
 * failed -> queued, on the owner's request: the job starts over with a fresh count of attempts and
 * no backoff. Compare-and-set on the state: a job that is not failed (any more) is left alone.
 */
export function retryJob(data: Data, jobId: string, now: number): Transition {
  const job = own(data.jobs, jobId);
  if (!job) return refused('no_job');
  if (job.state !== 'failed') return refused('wrong_state');
  job.state = 'queued';
  job.attempts = 0;
  job.lease = null;
  job.not_before = 0;
  job.error = null;
  job.started_at = null;
  job.finished_at = null;
  stamp(job, now);
  return applied(job);
}
