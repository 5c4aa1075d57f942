import { own, type Data, type Job } from '../store/index.js';

/**
 * failed -> queued, on the owner's request: the job starts over with a fresh count of attempts and
 * no backoff. Compare-and-set on the state: a job that is not failed (any more) is left alone.
 */
export function retryJob(data: Data, jobId: string, now: number): Job | null {
  const job = own(data.jobs, jobId);
  if (job?.state !== 'failed') return null;
  job.state = 'queued';
  job.attempts = 0;
  job.lease = null;
  job.not_before = 0;
  job.error = null;
  job.finished_at = null;
  job.updated_at = new Date(now).toISOString();
  return job;
}
