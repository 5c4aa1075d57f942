import type { ImageRecord, Job, Store, Workload } from './store/index.js';

/**
 * Visits the workload's originals in upload order, each with its job and, once the job is done, its
 * filtered image (a filtered file of a job that has not finished is not a result yet).
 */
export function forEachOriginal(
  store: Store,
  workload: Workload,
  visit: (original: ImageRecord, job: Job | undefined, filtered: ImageRecord | undefined) => void,
): void {
  for (const imageId of store.originals.of(workload.id)) {
    const original = store.data.images[imageId];
    if (!original) continue;
    const job = original.job_id ? store.data.jobs[original.job_id] : undefined;
    const filtered =
      job?.state === 'done' && job.filtered_image_id ? store.data.images[job.filtered_image_id] : undefined;
    visit(original, job, filtered);
  }
}
