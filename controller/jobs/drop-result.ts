import { own, type Data } from '../store/index.js';
import { applied, refused, stamp, type Transition } from './transition.js';

/**
 * A done job's filtered image was deleted by its owner: the job stays done, without a result.
 * Compare-and-set on the result: a job whose result is another image is left alone.
 */
export function dropResult(data: Data, jobId: string, filteredImageId: string, now: number): Transition {
  const job = own(data.jobs, jobId);
  if (!job) return refused('no_job');
  if (job.filtered_image_id !== filteredImageId) return refused('wrong_result');
  job.filtered_image_id = null;
  stamp(job, now);
  return applied(job);
}
