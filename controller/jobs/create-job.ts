import { randomUUID } from 'node:crypto';
import type { Data, Job } from '../store/index.js';

/** A new original's job, queued. */
export function createJob(data: Data, workloadId: string, imageId: string, now: number): Job {
  const at = new Date(now).toISOString();
  const job: Job = {
    id: randomUUID(),
    workload_id: workloadId,
    image_id: imageId,
    state: 'queued',
    attempts: 0,
    lease: null,
    not_before: 0,
    error: null,
    filtered_image_id: null,
    created_at: at,
    updated_at: at,
    started_at: null,
    finished_at: null,
  };
  data.jobs[job.id] = job;
  return job;
}
