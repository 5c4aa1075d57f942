import { own, type Data, type JobState } from '../store/index.js';
import { applied, refused, stamp, type Transition } from './transition.js';

/** States a job can be cancelled from: it has not finished. */
const UNFINISHED: ReadonlySet<JobState> = new Set<JobState>(['queued', 'assigned', 'running']);

/**
 * queued|assigned|running -> cancelled, on the owner's request (the workload was cancelled or deleted,
 * or the original was deleted). The lease goes with it: the holder's renewal, result and failure report
 * are all refused from here on. Compare-and-set on the state: a finished job is left alone.
 */
export function cancelJob(data: Data, jobId: string, now: number): Transition {
  const job = own(data.jobs, jobId);
  if (!job) return refused('no_job');
  if (!UNFINISHED.has(job.state)) return refused('wrong_state');
  const at = stamp(job, now);
  job.state = 'cancelled';
  job.lease = null;
  job.finished_at = at;
  return applied(job);
}
