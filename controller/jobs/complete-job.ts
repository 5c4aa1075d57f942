import { own, type Data, type ImageRecord } from '../store/index.js';
import { holderRefusal } from './lease.js';
import { applied, refused, stamp, type Transition } from './transition.js';

/** The filtered image offered as a job's result: what the completion checks of it. */
export type JobResult = Pick<ImageRecord, 'id' | 'type' | 'source_image_id'>;

/** assigned|running -> done, only for the current lease holder, with a filtered image made from the job's original. */
export function completeJob(
  data: Data,
  jobId: string,
  workerId: string,
  leaseId: string,
  result: JobResult,
  now: number,
): Transition {
  const job = own(data.jobs, jobId);
  const refusal = holderRefusal(job, workerId, leaseId);
  if (refusal || !job) return refused(refusal ?? 'no_job');
  if (result.type !== 'filtered' || result.source_image_id !== job.image_id) return refused('wrong_result');
  const at = stamp(job, now);
  job.state = 'done';
  job.lease = null;
  job.error = null;
  job.filtered_image_id = result.id;
  job.finished_at = at;
  return applied(job);
}
