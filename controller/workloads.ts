import { randomBytes, randomUUID } from 'node:crypto';
import { AppError } from '../common/errors.js';
import type { WorkloadStatus, WorkloadView } from '../common/views.js';
import { own, type Store, type Workload } from './store/index.js';
import { forEachOriginal } from './workload-results.js';

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
  const lower = workloadName.toLowerCase();
  // case-insensitive: two names that differ only in case would share a directory on some file systems
  if (Object.values(store.data.workloads).some((workload) => workload.name.toLowerCase() === lower)) {
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
  return workload;
}

/** The caller's workload, or 404: another user's workload is indistinguishable from a missing one. */
export function findWorkload(store: Store, owner: string, id: string): Workload {
  const workload = own(store.data.workloads, id);
  if (!workload || workload.owner !== owner) throw new AppError('not_found', `no workload with id "${id}"`);
  return workload;
}

export function viewWorkload(store: Store, workload: Workload): WorkloadView {
  const counts = { queued: 0, assigned: 0, running: 0, done: 0, failed: 0 };
  const filtered: string[] = [];
  const failures: { image_id: string; error: string }[] = [];
  const originals = store.originals.of(workload.id);
  forEachOriginal(store, workload, (original, job, result) => {
    if (!job) return;
    counts[job.state] += 1;
    if (result) filtered.push(result.id);
    if (job.state === 'failed') failures.push({ image_id: original.id, error: job.error ?? 'failed' });
  });
  const total = originals.length;
  const finished = counts.done + counts.failed;
  const active = counts.assigned + counts.running;
  const status: WorkloadStatus =
    total > 0 && finished === total ? 'completed' : active > 0 || finished > 0 ? 'running' : 'scheduling';
  return {
    workload_id: workload.id,
    workload_name: workload.name,
    filter: workload.filter,
    tags: workload.tags,
    status,
    running_jobs: active,
    filtered_images: filtered,
    total_images: total,
    queued_jobs: counts.queued,
    done_jobs: counts.done,
    failed_jobs: counts.failed,
    failures,
    created_at: workload.created_at,
  };
}

export function activeWorkloads(store: Store, owner: string): WorkloadView[] {
  return Object.values(store.data.workloads)
    .filter((workload) => workload.owner === owner)
    .map((workload) => viewWorkload(store, workload))
    .filter((view) => view.status !== 'completed');
}

/** All the owner's workloads, newest first. */
export function listWorkloads(store: Store, owner: string): WorkloadView[] {
  return Object.values(store.data.workloads)
    .filter((workload) => workload.owner === owner)
    .sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id))
    .map((workload) => viewWorkload(store, workload));
}
