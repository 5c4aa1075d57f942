import { AppError } from '../common/errors.js';
import type { RemovedView } from '../common/views.js';
import type { ImageLibrary } from './images.js';
import type { JobBook } from './job-book.js';
import type { LeftoverRemovals } from './leftover-removals.js';
import type { ImageRecord, Job, Store, Workload } from './store/index.js';
import { markCancelled, removeWorkload, workloadStatus } from './workloads.js';

/** What a deletion took away, as the API answers it. */
export function removedView(removed: Removed): RemovedView {
  return {
    deleted: true,
    removed_images: removed.images,
    removed_bytes: removed.bytes,
    cancelled_jobs: removed.cancelled_jobs,
  };
}

function unfinished(job: Job): boolean {
  return job.state === 'queued' || job.state === 'assigned' || job.state === 'running';
}

/** Why something was deleted: its owner asked, or retention aged it out. */
export type DeleteReason = 'user' | 'retention';

/** What a deletion took away. */
export interface Removed {
  images: number;
  bytes: number;
  /** Jobs that had not finished and were cancelled on the way. */
  cancelled_jobs: number;
}

/** What deletions took away since the server started, by reason (for /metrics). */
export type DeletedTotals = Record<DeleteReason, { workloads: number; images: number; bytes: number }>;

/** A workload was made, changed by its owner (cancelled, an image deleted) or deleted: its owner's streams hear it. */
export interface WorkloadEvent {
  kind: 'created' | 'changed' | 'deleted';
  workload_id: string;
  owner: string;
}

/**
 * Cancelling and deleting workloads and images. Each operation changes the records in one synchronous
 * step (jobs cancelled, records taken out, counts following), commits, and only then removes files: a
 * crash in between leaves files no record points at, which the next start removes. A job that held a
 * lease ends `cancelled`, which the job book reports (with its holder) as it happens: the scheduler asks
 * that worker to stop, and whatever the worker still sends about it is refused (410).
 */
export class Lifecycle {
  private readonly deleted: DeletedTotals = {
    user: { workloads: 0, images: 0, bytes: 0 },
    retention: { workloads: 0, images: 0, bytes: 0 },
  };

  constructor(
    private readonly store: Store,
    private readonly jobs: JobBook,
    private readonly images: ImageLibrary,
    private readonly emit: (event: WorkloadEvent) => void,
    /** Removes the files of what was deleted, retrying what fails after the deletion committed. */
    private readonly removals: LeftoverRemovals,
    private readonly clock: () => number = Date.now,
  ) {}

  totals(): Readonly<DeletedTotals> {
    return this.deleted;
  }

  /** Removals of deleted files that failed and wait for a retry. */
  get leftoverRemovals(): number {
    return this.removals.pending;
  }

  created(workload: Workload): void {
    this.emit({ kind: 'created', workload_id: workload.id, owner: workload.owner });
  }

  /**
   * Cancels the workload: its unfinished jobs end `cancelled` (running ones are stopped on their workers),
   * its results stay, and it takes no more images. 409 once it has finished (completed or cancelled).
   * Resolves once durable; returns how many jobs were cancelled.
   */
  async cancel(workload: Workload): Promise<number> {
    const status = workloadStatus({ store: this.store, jobs: this.jobs }, workload);
    if (status === 'completed' || status === 'cancelled')
      throw new AppError('conflict', `workload "${workload.name}" is already ${status}: nothing to cancel`);
    const cancelled = this.cancelJobs(workload);
    markCancelled(this.store, workload, this.clock());
    await this.store.commit();
    this.emit({ kind: 'changed', workload_id: workload.id, owner: workload.owner });
    return cancelled;
  }

  /**
   * Deletes the workload: cancels it, takes out every image of it (originals and results), its jobs and
   * its record, commits, then removes its folder (again and again if that fails: the deletion stands). Its
   * name is free again once the folder is gone.
   */
  async deleteWorkload(workload: Workload, reason: DeleteReason): Promise<Removed> {
    const cancelled = this.cancelJobs(workload);
    const removed: ImageRecord[] = [];
    const jobIds: string[] = [];
    const originals = [...this.store.originals.of(workload.id)];
    // the lists at once: taking each original out of them one by one would cost their length each time
    this.store.originals.dropWorkload(workload.id);
    for (const id of originals) {
      const original = this.store.data.images[id];
      if (!original) continue;
      const job = original.job_id ? this.store.data.jobs[original.job_id] : undefined;
      if (job) jobIds.push(job.id);
      this.takeImages(original, job, removed);
    }
    this.jobs.removeWorkload(workload.id, jobIds);
    removeWorkload(this.store, workload);
    const releaseName = (): void => this.store.workloadIndex.releaseName(workload.name);
    try {
      await this.store.commit();
    } catch (error) {
      releaseName();
      throw error;
    }
    this.emit({ kind: 'deleted', workload_id: workload.id, owner: workload.owner });
    // deleted, whatever the removal of its files does: one that fails is tried again, and the name waits for it
    await this.removals.remove(
      `the folder of deleted workload "${workload.name}"`,
      () => this.images.removeFolder(workload),
      releaseName,
    );
    return this.count(reason, removed, cancelled, 1);
  }

  /**
   * Deletes one image. An original takes its job (cancelled first if unfinished) and its filtered image
   * with it; a filtered image alone leaves its original's job done, without a result.
   */
  async deleteImage(image: ImageRecord): Promise<Removed> {
    const removed: ImageRecord[] = [];
    let cancelled = 0;
    if (image.type === 'original') {
      const job = image.job_id ? this.store.data.jobs[image.job_id] : undefined;
      if (job && unfinished(job) && this.jobs.cancel(job.id).ok) cancelled = 1;
      // the job first: its place in the tally's lists is found by its original's upload order
      if (job) this.jobs.remove(job.id);
      this.takeImages(image, job, removed);
    } else {
      const original = image.source_image_id ? this.store.data.images[image.source_image_id] : undefined;
      const jobId = original?.job_id;
      if (jobId) this.jobs.dropResult(jobId, image.id);
      this.images.forget(image);
      removed.push(image);
    }
    await this.store.commit();
    const owner = this.store.data.workloads[image.workload_id]?.owner;
    if (owner) this.emit({ kind: 'changed', workload_id: image.workload_id, owner });
    await this.removals.remove(`the files of deleted image ${image.id}`, () => this.images.removeFiles(removed));
    return this.count('user', removed, cancelled, 0);
  }

  /** Cancels every unfinished job of the workload, in upload order; returns how many. */
  private cancelJobs(workload: Workload): number {
    let cancelled = 0;
    for (const id of this.store.originals.of(workload.id)) {
      const jobId = this.store.data.images[id]?.job_id;
      const job = jobId ? this.store.data.jobs[jobId] : undefined;
      if (job && unfinished(job) && this.jobs.cancel(job.id).ok) cancelled += 1;
    }
    return cancelled;
  }

  /** Takes out an original and its job's filtered image (into `removed`); `job` as it was before any removal. */
  private takeImages(original: ImageRecord, job: Job | undefined, removed: ImageRecord[]): void {
    const result = job?.filtered_image_id ? this.store.data.images[job.filtered_image_id] : undefined;
    if (result) {
      this.images.forget(result);
      removed.push(result);
    }
    this.images.forget(original);
    removed.push(original);
  }

  private count(reason: DeleteReason, removed: readonly ImageRecord[], cancelled: number, workloads: number): Removed {
    const bytes = removed.reduce((sum, image) => sum + image.bytes, 0);
    const totals = this.deleted[reason];
    totals.workloads += workloads;
    totals.images += removed.length;
    totals.bytes += bytes;
    return { images: removed.length, bytes, cancelled_jobs: cancelled };
  }
}
