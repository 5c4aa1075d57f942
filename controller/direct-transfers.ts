import { AppError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { outputFormatOf } from '../common/operations/index.js';
import type { FilteredUpload, JobSource, JobTarget } from '../common/protocol.js';
import type { ImageStore, StoredObject } from './image-store/index.js';
import { refuseStale, resultKey, staleResult, type ImageMime } from './images.js';
import type { JobBook, JobChange } from './job-book.js';
import { own, type ImageRecord, type Job, type Store, type Workload } from './store/index.js';
import { chainOf } from './workload-needs.js';

/** A presigned GET is used at once, when the worker starts the job. */
const SOURCE_EXPIRY_S = 5 * 60;

const MIME_OF_FORMAT: Record<string, ImageMime> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  avif: 'image/avif',
};

/** What the result of a workload's job must be: its chain's format step's type, else its original's. */
export function resultMimeOf(workload: Workload, original: ImageRecord): ImageMime {
  const format = outputFormatOf(chainOf(workload));
  return format ? MIME_OF_FORMAT[format]! : (original.mime as ImageMime);
}

/** Where a lease's result goes, and the type it must have. */
function resultOf(
  found: { workload: Workload; original: ImageRecord },
  leaseId: string,
): { key: string; mime: ImageMime } {
  const mime = resultMimeOf(found.workload, found.original);
  return { key: resultKey(found.workload, found.original.id, leaseId, mime), mime };
}

export interface Transfers {
  source: JobSource;
  target: JobTarget;
}

/** A stored result, found where its lease's key says and read enough to check it. */
export interface StoredResult {
  key: string;
  mime: ImageMime;
  object: StoredObject;
}

/**
 * The byte paths that skip the API: what a job's assignment says about where its original comes from and
 * where its result goes, the check of a result its worker stored itself, and the removal of what a lost
 * lease may have written.
 *
 * - Object storage: a presigned GET for the original, a presigned PUT for the result's key (one key, one
 *   method, short expiry).
 * - The local folder, to a worker that proved it sees it (the same STORE_ID_FILE content): by path.
 * - Anyone else: through the API.
 */
export class DirectTransfers {
  /** Removals of lost leases' keys, to repeat once whatever was handed out for them has expired. */
  private readonly again = new Set<NodeJS.Timeout>();

  constructor(
    private readonly store: Store,
    private readonly files: ImageStore,
    private readonly jobs: JobBook,
    /** How long a presigned PUT is good for: a job running longer is timed out anyway. */
    private readonly targetExpiryMs: number,
    private readonly log: Logger,
  ) {}

  /** Where the job's bytes come from and go, for this worker and this lease. */
  async forJob(jobId: string, seesImages: boolean, leaseId: string): Promise<Transfers> {
    const found = this.find(jobId);
    if (!found || (!this.files.presigns && !seesImages)) return { source: { via: 'api' }, target: { via: 'api' } };
    const { original } = found;
    const { key, mime } = resultOf(found, leaseId);
    if (!this.files.presigns) {
      return { source: { via: 'path', key: original.file }, target: { via: 'path', key, mime } };
    }
    const [get, put] = await Promise.all([
      this.files.presign('GET', original.file, SOURCE_EXPIRY_S),
      this.files.presign('PUT', key, Math.ceil(this.targetExpiryMs / 1000), mime),
    ]);
    return {
      source: { via: 'url', url: get.url, headers: get.headers },
      target: { via: 'url', url: put.url, headers: put.headers, mime },
    };
  }

  /**
   * The result already accepted for this report's lease: the same report sent again (to a new leader, its first
   * answer lost after the commit) is answered with it, as the first was. Null for any other report.
   */
  acceptedFor(upload: FilteredUpload): ImageRecord | null {
    const found = this.find(upload.job_id);
    return found && this.acceptedAt(found, upload.lease_id);
  }

  /**
   * The result a worker reports as stored, read from its lease's key (its first `headBytes`, for its
   * header). 409/410 when the lease moved on or
   * the job is gone (nothing is read); a result missing at its key fails that attempt (422).
   */
  async findStored(upload: FilteredUpload, workerId: string, headBytes: number): Promise<StoredResult> {
    const { job_id: jobId, lease_id: leaseId } = upload;
    const found = this.find(jobId);
    const refusal = this.jobs.holderRefusal('complete', jobId, workerId, leaseId);
    if (refusal) {
      // what a lost lease wrote is never taken: it goes, unless its key is still in use
      if (found && !this.inUse(found, leaseId)) await this.removeResultOf(found, leaseId);
      throw staleResult(refusal);
    }
    if (!found) throw new AppError('not_found', "the job's workload or original is gone");
    const { key, mime } = resultOf(found, leaseId);
    const object = await this.files.inspect(key, headBytes);
    if (!object) return this.reject(upload, workerId, 'the result was not found in the image store at its key');
    // before the result's record can commit (a worker by path leaves its folder's sync to this, shared)
    await this.files.settle(key);
    return { key, mime, object };
  }

  /**
   * The worker's stored result is missing or wrong: that attempt fails (retried if attempts remain), its
   * object goes, and the answer is 422 (the worker reports nothing more).
   */
  async reject(upload: FilteredUpload, workerId: string, reason: string): Promise<never> {
    const { job_id: jobId, lease_id: leaseId } = upload;
    const found = this.find(jobId);
    const failure = this.jobs.fail(jobId, workerId, leaseId, `the stored result was refused: ${reason}`, true);
    if (found) await this.removeResultOf(found, leaseId);
    if (!failure.ok) refuseStale(this.jobs, jobId, workerId, leaseId);
    await this.store.commit();
    throw new AppError('unprocessable', `the stored result was refused: ${reason}; the attempt failed`);
  }

  /**
   * A lease ended without its result being kept (it failed, expired, was released or cancelled): whatever
   * its worker wrote or may still write at its key goes, now and again once its presigned PUT has expired.
   */
  leaseEnded(change: JobChange): void {
    const { job, lease, from } = change;
    // an assignment never started (declined, unreachable) wrote nothing; a completion keeps its key
    if (!lease || from === 'assigned' || job.state === 'done' || job.lease?.lease_id === lease) return;
    const found = this.find(job.id);
    if (!found) return;
    const remove = (): void => void this.removeResultOf(found, lease);
    remove();
    const timer = setTimeout(() => {
      this.again.delete(timer);
      remove();
    }, this.targetExpiryMs + 1000);
    timer.unref();
    this.again.add(timer);
  }

  close(): void {
    for (const timer of this.again) clearTimeout(timer);
    this.again.clear();
  }

  /**
   * Whether the lease's result key is in use: the lease holds the job now, or its result was accepted already
   * (a report sent again after its first answer was lost).
   */
  private inUse(found: { job: Job; workload: Workload; original: ImageRecord }, leaseId: string): boolean {
    return found.job.lease?.lease_id === leaseId || this.acceptedAt(found, leaseId) !== null;
  }

  /** The job's accepted result when it is at this lease's key, else null. */
  private acceptedAt(
    found: { job: Job; workload: Workload; original: ImageRecord },
    leaseId: string,
  ): ImageRecord | null {
    const { job } = found;
    const accepted = job.filtered_image_id === null ? undefined : own(this.store.data.images, job.filtered_image_id);
    return accepted?.file === resultOf(found, leaseId).key ? accepted : null;
  }

  /** Removes whatever is at the lease's result key (failures are logged: the start-up sweep finds it later). */
  private async removeResultOf(found: { workload: Workload; original: ImageRecord }, leaseId: string): Promise<void> {
    const { key } = resultOf(found, leaseId);
    await this.files.remove(key).catch((error: unknown) => {
      this.log.debug({ key, error: error instanceof Error ? error.message : String(error) }, 'lost result stays');
    });
  }

  private find(jobId: string): { job: Job; workload: Workload; original: ImageRecord } | null {
    const job = own(this.store.data.jobs, jobId);
    const workload = job && own(this.store.data.workloads, job.workload_id);
    const original = job && own(this.store.data.images, job.image_id);
    return job && workload && original ? { job, workload, original } : null;
  }
}
