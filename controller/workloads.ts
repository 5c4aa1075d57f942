import { randomBytes, randomUUID } from 'node:crypto';
import { AppError } from '../common/errors.js';
import type { WorkloadPage, WorkloadStatus, WorkloadView } from '../common/views.js';
import type { JobCounts, StateCounts } from './job-tally.js';
import { creationOrder, own, type Store, type WorkerRecord, type Workload } from './store/index.js';
import type { Operation } from '../common/operations/index.js';
import { capabilitiesOf, chainOf, missing, needsOf } from './workload-needs.js';

export type { WorkloadPage, WorkloadStatus, WorkloadView } from '../common/views.js';

// Workload names become directory names: a conservative alphabet, no dots at the start, so no `.`, `..`,
// separators or NUL.
const WORKLOAD_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function validateWorkloadName(name: string): string | null {
  return WORKLOAD_NAME.test(name)
    ? null
    : 'workload_name must be 1-64 characters: letters, digits, "_" and "-", starting with a letter or digit';
}

/** A new workload: a course filter's, or (with `operations`) a chain's, whose filter is then null. */
export function createWorkload(
  store: Store,
  owner: string,
  name: string | undefined,
  filter: string | null,
  tags: string[],
  operations?: Operation[],
): Workload {
  const workloadName = name ?? `workload-${randomBytes(4).toString('hex')}`;
  const invalid = validateWorkloadName(workloadName);
  if (invalid) throw new AppError('bad_request', invalid);
  // case-insensitive: two names that differ only in case would share a directory on some file systems
  if (store.workloadIndex.nameTaken(workloadName)) {
    throw new AppError('conflict', `a workload named "${workloadName}" already exists: choose another name`);
  }
  if (store.workloadIndex.nameHeld(workloadName)) {
    throw new AppError(
      'conflict',
      `a deleted workload named "${workloadName}" is still being removed: try again in a moment, or choose ` +
        'another name',
    );
  }
  const workload: Workload = {
    id: randomUUID(),
    owner,
    name: workloadName,
    filter: operations ? null : filter,
    ...(operations ? { operations } : {}),
    tags,
    created_at: new Date().toISOString(),
  };
  store.change('workloads', workload.id);
  store.data.workloads[workload.id] = workload;
  store.workloadIndex.add(workload);
  return workload;
}

/** The owner cancelled the workload: it takes no more images (its jobs are cancelled by the caller). */
export function markCancelled(store: Store, workload: Workload, now: number): void {
  store.change('workloads', workload.id);
  workload.cancelled_at = new Date(now).toISOString();
}

/** Takes the workload's record out (its images and jobs went before); its name stays held (see WorkloadIndex). */
export function removeWorkload(store: Store, workload: Workload): void {
  store.change('workloads', workload.id);
  delete store.data.workloads[workload.id];
  store.workloadIndex.delete(workload);
}

/** The caller's workload, or 404: another user's workload is indistinguishable from a missing one. */
export function findWorkload(store: Store, owner: string, id: string): Workload {
  const workload = own(store.data.workloads, id);
  if (!workload || workload.owner !== owner) throw new AppError('not_found', `no workload with id "${id}"`);
  return workload;
}

/** What a workload view reads: the records, the jobs kept counted per workload, and the retention period. */
export interface WorkloadBooks {
  store: Store;
  jobs: { readonly tally: JobCounts };
  config?: { readonly retentionMs?: number | null };
  /** The live workers: a workload whose queued jobs none of them can run says why. */
  workers?: { alive(): readonly { record: WorkerRecord }[] };
  /** The image store's health: while it is down, no job is given out. */
  storeHealth?: { readonly available: boolean };
}

/**
 * Why the workload's queued jobs wait: the image store is down, or no live worker can run them ("no live worker
 * can encode avif"); null when nothing stops them.
 */
export function waitingFor(books: WorkloadBooks, workload: Workload): string | null {
  if (books.storeHealth?.available === false) return 'the image store is unavailable: jobs wait until it answers';
  if (!books.workers) return null;
  const needs = needsOf(workload);
  const alive = books.workers.alive();
  if (alive.length === 0) return 'no live worker is connected';
  let reason: string | null = null;
  for (const { record } of alive) {
    const lacks = missing({ ...capabilitiesOf(record), tags: record.tags }, needs);
    if (lacks === null) return null;
    reason ??= lacks;
  }
  return `no live worker can ${reason}`;
}

function statusOf(workload: Workload, counts: Readonly<StateCounts>, total: number): WorkloadStatus {
  if (workload.cancelled_at) return 'cancelled';
  const finished = counts.done + counts.failed + counts.cancelled;
  const active = counts.assigned + counts.running;
  return total > 0 && finished === total ? 'completed' : active > 0 || finished > 0 ? 'running' : 'scheduling';
}

export function workloadStatus(books: WorkloadBooks, workload: Workload): WorkloadStatus {
  return statusOf(workload, books.jobs.tally.of(workload.id).counts, books.store.originals.of(workload.id).length);
}

/**
 * When retention deletes the workload (epoch ms): its last activity (created, cancelled, or any change of
 * one of its jobs) plus the period. Null while retention is off or a job of it has not finished.
 */
export function expiresAt(books: WorkloadBooks, workload: Workload): number | null {
  const retentionMs = books.config?.retentionMs ?? null;
  if (retentionMs === null) return null;
  const { counts, lastChange } = books.jobs.tally.of(workload.id);
  if (counts.queued + counts.assigned + counts.running > 0) return null;
  const last = Math.max(Date.parse(workload.created_at), Date.parse(workload.cancelled_at ?? '') || 0, lastChange);
  return last + retentionMs;
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
  const expires = expiresAt(books, workload);
  const waiting = counts.queued > 0 ? waitingFor(books, workload) : null;
  return {
    workload_id: workload.id,
    workload_name: workload.name,
    filter: workload.filter,
    operations: chainOf(workload),
    tags: workload.tags,
    status: statusOf(workload, counts, total),
    running_jobs: counts.assigned + counts.running,
    filtered_images: filtered,
    total_images: total,
    queued_jobs: counts.queued,
    done_jobs: counts.done,
    failed_jobs: counts.failed,
    cancelled_jobs: counts.cancelled,
    failures,
    created_at: workload.created_at,
    cancelled_at: workload.cancelled_at ?? null,
    ...(waiting === null ? {} : { waiting_for: waiting }),
    ...(books.config?.retentionMs == null
      ? {}
      : { expires_at: expires === null ? null : new Date(expires).toISOString() }),
  };
}

/** The owner's workloads that are neither completed nor cancelled; any other costs its counts only. */
export function activeWorkloads(books: WorkloadBooks, owner: string): WorkloadView[] {
  const views: WorkloadView[] = [];
  for (const id of books.store.workloadIndex.of(owner)) {
    const workload = books.store.data.workloads[id];
    if (!workload) continue;
    const status = workloadStatus(books, workload);
    if (status !== 'completed' && status !== 'cancelled') views.push(viewWorkload(books, workload));
  }
  return views;
}

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 500;

type CursorKey = Pick<Workload, 'created_at' | 'id'>;

function encodeCursor(workload: Workload): string {
  return Buffer.from(JSON.stringify([workload.created_at, workload.id])).toString('base64url');
}

function decodeCursor(cursor: string): CursorKey {
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === 2 && typeof key[0] === 'string' && typeof key[1] === 'string')
      return { created_at: key[0], id: key[1] };
  } catch {
    // answered below
  }
  throw new AppError('bad_request', '"cursor" is not one this server gave out: pass next_cursor as it came');
}

/**
 * The owner's workloads, newest first, `limit` at a time: after `cursor` (the next_cursor of the page
 * before), or from the newest. A workload created or deleted between pages neither repeats nor shifts
 * the others: the cursor is the last workload's place in creation order, not a count.
 */
export function listWorkloads(
  books: WorkloadBooks,
  owner: string,
  page: { limit?: number; cursor?: string } = {},
): WorkloadPage {
  const limit = page.limit ?? DEFAULT_PAGE;
  const ids = books.store.workloadIndex.of(owner);
  const workloads = books.store.data.workloads;
  // the first workload (oldest first) at or after the cursor: everything before it comes on this page
  let end = ids.length;
  if (page.cursor !== undefined) {
    const after = decodeCursor(page.cursor);
    let low = 0;
    while (low < end) {
      const middle = (low + end) >>> 1;
      if (creationOrder(workloads[ids[middle]!], after) < 0) low = middle + 1;
      else end = middle;
    }
  }
  const views: WorkloadView[] = [];
  let at = end - 1;
  for (; at >= 0 && views.length < limit; at--) {
    const workload = workloads[ids[at]!];
    if (workload) views.push(viewWorkload(books, workload));
  }
  const last = workloads[ids[at + 1]!];
  return { workloads: views, next_cursor: at >= 0 && last ? encodeCursor(last) : null };
}
