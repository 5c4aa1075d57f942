import { own, type Data, type Job, type JobState } from '../store/index.js';

const FINISHED: ReadonlySet<JobState> = new Set<JobState>(['done', 'failed', 'cancelled']);

/** Whether the job has finished (done, failed or cancelled): only then may it be deleted. */
export function isFinished(job: Job): boolean {
  return FINISHED.has(job.state);
}

/**
 * Removes a job whose original was deleted. Only a finished job goes (cancel it first): a job that
 * holds a lease is never removed under its holder. Returns the job as it was, or null when it is not
 * there or has not finished.
 */
export function deleteJob(data: Data, jobId: string): Job | null {
  const job = own(data.jobs, jobId);
  if (!job || !isFinished(job)) return null;
  delete data.jobs[jobId];
  return job;
}
