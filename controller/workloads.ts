import { randomBytes, randomUUID } from 'node:crypto';
import { AppError } from '../common/errors.js';
import type { WorkloadStatus, WorkloadView } from '../common/views.js';
import type { JobCounts, StateCounts } from './job-tally.js';
import { own, type Store, type Workload } from './store/index.js';

export type { WorkloadStatus, WorkloadView } from '../common/views.js';

// Workload names become directory names: a conservative alphabet, no dots at the start, so no `.`, `..`,
// separators or NUL.
const WORKLOAD_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function validateWorkloadName(name: string): string | null {
  return WORKLOAD_NAME.test(name)
    ? null
    : 'workload_name must be 1-64 characters: letters, digits, "_" and "-", starting with a letter or digit';
}

export function createWorkload(
  store: Store,
  owner: string,
  name: string | undefined,
  filter: string,
  tags: string[],
): Workload {
  const workloadName = name ?? `workload-${randomBytes(4).toString('hex')}`;
  const invalid = validateWorkloadName(workloadName);
  if (invalid) throw new AppError('bad_request', invalid);
  // case-insensitive: two names that differ only in case would share a directory on some file systems
  if (store.workloadIndex.nameTaken(workloadName)) {
    throw new AppError('conflict', `a workload named "${workloadName}" already exists: choose another name`);
  }
  const workload: Workload = {
    id: randomUUID(),
    owner,
    name: workloadName,
    filter,
    tags,
    created_at: new Date().toISOString(),
  };
  store.change('workloads', workload.id);
  store.data.workloads[workload.id] = workload;
  store.workloadIndex.add(workload);
  return workload;
}

/** The caller's workload, or 404: another user's workload is indistinguishable from a missing one. */
export function findWorkload(store: Store, owner: string, id: string): Workload {
  const workload = own(store.data.workloads, id);
  if (!workload || workload.owner !== owner) throw new AppError('not_found', `no workload with id "${id}"`);
  return workload;
}

/** What a workload view reads: the records, and the jobs kept counted per workload. */
export interface WorkloadBooks {
  store: Store;
  jobs: { readonly tally: JobCounts };
}

function statusOf(counts: Readonly<StateCounts>, total: number): WorkloadStatus {
  const finished = counts.done + counts.failed;
  const active = counts.assigned + counts.running;
  return total > 0 && finished === total ? 'completed' : active > 0 || finished > 0 ? 'running' : 'scheduling';
}

/**
 * The workload as its owner sees it. Counts and status come from the kept tally; the results and the
 * failures are its lists of done and failed jobs (in upload order), so the view costs what it lists,
 * never a walk over the workload's originals.
 */
export function viewWorkload(books: WorkloadBooks, workload: Workload): WorkloadView {
  const { store } = books;
  const { counts, done, failed } = books.jobs.tally.of(workload.id);
  const total = store.originals.of(workload.id).length;
  const filtered: string[] = [];
  for (const jobId of done) {
    const result = store.data.jobs[jobId]?.filtered_image_id;
    if (result) filtered.push(result);
  }
  const failures: { image_id: string; error: string }[] = [];
  for (const jobId of failed) {
    const job = store.data.jobs[jobId];
    if (job) failures.push({ image_id: job.image_id, error: job.error ?? 'failed' });
  }
  return {
    workload_id: workload.id,
    workload_name: workload.name,
    filter: workload.filter,
    tags: workload.tags,
    status: statusOf(counts, total),
    running_jobs: counts.assigned + counts.running,
    filtered_images: filtered,
    total_images: total,
    queued_jobs: counts.queued,
    done_jobs: counts.done,
    failed_jobs: counts.failed,
    failures,
    created_at: workload.created_at,
  };
}

/** The owner's workloads (only theirs are touched), in creation order. */
function workloadsOf(store: Store, owner: string): Workload[] {
  const found: Workload[] = [];
  for (const id of store.workloadIndex.of(owner)) {
    const workload = store.data.workloads[id];
    if (workload) found.push(workload);
  }
  return found;
}

/** The owner's workloads that are not completed; a completed one costs its counts only. */
export function activeWorkloads(books: WorkloadBooks, owner: string): WorkloadView[] {
  const { store, jobs } = books;
  return workloadsOf(store, owner)
    .filter(
      (workload) => statusOf(jobs.tally.of(workload.id).counts, store.originals.of(workload.id).length) !== 'completed',
    )
    .map((workload) => viewWorkload(books, workload));
}

/** All the owner's workloads, newest first. */
export function listWorkloads(books: WorkloadBooks, owner: string): WorkloadView[] {
  return workloadsOf(books.store, owner)
    .sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id))
    .map((workload) => viewWorkload(books, workload));
}
