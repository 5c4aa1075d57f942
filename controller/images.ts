import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { AppError } from '../common/errors.js';
import type { FilteredUpload } from '../common/protocol.js';
import type { Refusal } from './jobs/index.js';
import type { DiskRoom } from './disk-room.js';
import type { ImageFiles, IncomingContent } from './image-files.js';
import type { JobBook } from './job-book.js';
import type { UserQuotas } from './quotas.js';
import { own, type ImageRecord, type ImageType, type Store, type Workload } from './store/index.js';

const STALE_RESULT: Record<Refusal, string> = {
  no_job: 'no such job: result discarded',
  lease_moved: 'the lease on this job has moved on: result discarded',
  wrong_state: 'the job is no longer running: result discarded',
  in_backoff: 'the job is waiting to be retried: result discarded',
  lease_live: 'the job is no longer running: result discarded',
  in_time: 'the job is no longer running: result discarded',
  wrong_result: "the result is not of this job's original: discarded",
};

function staleResult(refusal: Refusal): AppError {
  return new AppError('conflict', STALE_RESULT[refusal]);
}

export type ImageMime = 'image/png' | 'image/jpeg';

export type { IncomingContent } from './image-files.js';

export interface IncomingImage {
  content: IncomingContent;
  bytes: number;
  mime: ImageMime;
  width: number;
  height: number;
}

const EXTENSION: Record<ImageMime, string> = { 'image/png': 'png', 'image/jpeg': 'jpg' };

/** Images stored, and their bytes, by type. */
export type ImageTotals = Record<ImageType, { images: number; bytes: number }>;

/**
 * The images: their files (ImageFiles, under <images dir>/<workload name>/) and their records in the
 * datastore. A record is committed only after its file is durable, and a file whose record is refused
 * or does not commit is removed: no record without its file, no file without its record.
 */
export class ImageLibrary {
  /** Counted once at load, then kept as images are stored (or taken back by a failed commit). */
  private readonly kept: ImageTotals = { original: { images: 0, bytes: 0 }, filtered: { images: 0, bytes: 0 } };

  constructor(
    private readonly store: Store,
    private readonly jobs: JobBook,
    private readonly files: ImageFiles,
    private readonly room: DiskRoom,
    private readonly quotas: UserQuotas,
  ) {
    // a walk of the keys: Object.values would first copy every record into one array, which at a
    // million images costs seconds more in the garbage collector
    const records = store.data.images;
    for (const id in records) this.count(records[id]!, 1);
    store.onRollback((_restored, undone) => {
      for (const [id, was] of undone.get('images') ?? []) {
        if (was) this.count(was as ImageRecord, -1);
        const image = own(store.data.images, id);
        if (image) this.count(image, 1);
      }
    });
  }

  /** Images stored and their bytes, by type, as kept (no walk over the images). */
  totals(): Readonly<ImageTotals> {
    return this.kept;
  }

  get imagesDir(): string {
    return this.files.root;
  }

  /** At start: empties the staging area and removes the files no record points at; returns how many. */
  prepare(): Promise<number> {
    return this.files.prepare(new Set(Object.values(this.store.data.images).map((image) => image.file)));
  }

  /** 507 when an upload of this size would leave less free space than the reserve. */
  checkRoom(incomingBytes: number): void {
    this.room.check(incomingBytes);
  }

  /**
   * 403 when the user's quota (images, bytes) leaves no room for one more original of `incomingBytes`;
   * before the body is read, with what is known of it (0 when nothing is).
   */
  checkQuota(user: string, incomingBytes: number): void {
    this.quotas.check(user, incomingBytes);
  }

  /** A fresh path to stream an upload to before addOriginal or addFiltered keeps it. */
  stagingPath(): string {
    return this.files.stagingPath();
  }

  /** Removes a staged upload that was not kept (refused, or failed); a kept one is already gone. */
  discardStaged(staged: string): Promise<void> {
    return this.files.discardStaged(staged);
  }

  /** Keeps an original and queues its job; resolves once both the file and the record are durable. */
  async addOriginal(workload: Workload, image: IncomingImage): Promise<ImageRecord> {
    this.room.check(image.content.kind === 'memory' ? image.bytes : 0);
    // counted from here on, so that uploads in flight together cannot pass the quota; given back if not kept
    const release = this.quotas.reserve(workload.owner, image.bytes);
    try {
      const id = randomUUID();
      const file = path.posix.join(workload.name, `${id}.${EXTENSION[image.mime]}`);
      await this.files.put(image.content, file);
      const record = this.record(id, workload, 'original', null, file, image);
      const job = this.jobs.create(workload.id, id);
      record.job_id = job.id;
      this.put(record);
      this.store.originals.add(workload.id, id);
      await this.commitOrRemove(file);
      return record;
    } catch (error) {
      release();
      throw error;
    }
  }

  /**
   * Keeps a worker's filtered image for a job it holds, and completes the job: one commit, answered
   * 201. Each lease writes a file of its own, so a late result can never touch the accepted one. A
   * refused completion (the lease moved on, the job is no longer running) keeps nothing, no record and
   * no file, and is answered 409.
   */
  async addFiltered(upload: FilteredUpload, workerId: string, image: IncomingImage): Promise<ImageRecord> {
    const { job_id: jobId, lease_id: leaseId } = upload;
    this.refuseStale(jobId, workerId, leaseId);
    const job = own(this.store.data.jobs, jobId);
    const workload = job && own(this.store.data.workloads, job.workload_id);
    const original = job && own(this.store.data.images, job.image_id);
    const lease = job?.lease;
    if (!job || !workload || !original || !lease) {
      throw new AppError('not_found', "the job's workload or original is gone");
    }
    // the lease id is the server's own (the check above compared it): safe in a file name
    const file = path.posix.join(
      workload.name,
      `${original.id}.filtered-${lease.lease_id.replaceAll('-', '').slice(0, 12)}.${EXTENSION[image.mime]}`,
    );
    await this.files.put(image.content, file);
    const record = this.record(randomUUID(), workload, 'filtered', original.id, file, image);
    const completion = this.jobs.complete(jobId, workerId, leaseId, record);
    if (!completion.ok) {
      await this.files.remove(file);
      throw staleResult(completion.refusal);
    }
    this.put(record);
    await this.commitOrRemove(file);
    return record;
  }

  /** Commits; when the commit fails (everything not on disk was rolled back) the file goes too. */
  private async commitOrRemove(file: string): Promise<void> {
    try {
      await this.store.commit();
    } catch (error) {
      await this.files.remove(file);
      throw error;
    }
  }

  /** Stores a new image record, keeping the totals in step. */
  private put(record: ImageRecord): void {
    this.store.change('images', record.id);
    this.store.data.images[record.id] = record;
    this.count(record, 1);
  }

  private count(image: ImageRecord, sign: 1 | -1): void {
    const totals = this.kept[image.type];
    totals.images += sign;
    totals.bytes += sign * image.bytes;
  }

  /** 409 unless the worker still holds the job's lease and the job can still complete. */
  private refuseStale(jobId: string, workerId: string, leaseId: string): void {
    const refusal = this.jobs.holderRefusal('complete', jobId, workerId, leaseId);
    if (refusal) throw staleResult(refusal);
  }

  /** An image the user owns, or 404. */
  find(owner: string, id: string): ImageRecord {
    const image = own(this.store.data.images, id);
    if (!image || image.owner !== owner) throw new AppError('not_found', `no image with id "${id}"`);
    return image;
  }

  /** The original of a job the worker holds the lease on, or 404: a worker token reaches nothing else. */
  findForWorker(workerId: string, id: string): ImageRecord {
    const image = own(this.store.data.images, id);
    const job = image?.job_id ? this.store.data.jobs[image.job_id] : undefined;
    if (!image || job?.lease?.worker_id !== workerId)
      throw new AppError('not_found', `no image with id "${id}" in this worker's jobs`);
    return image;
  }

  pathOf(image: ImageRecord): string {
    return this.files.pathOf(image.file);
  }

  private record(
    id: string,
    workload: Workload,
    type: ImageRecord['type'],
    source: string | null,
    file: string,
    image: IncomingImage,
  ): ImageRecord {
    return {
      id,
      workload_id: workload.id,
      owner: workload.owner,
      type,
      source_image_id: source,
      job_id: null,
      file,
      mime: image.mime,
      bytes: image.bytes,
      width: image.width,
      height: image.height,
      created_at: new Date().toISOString(),
      seq: this.store.originals.nextSeq(),
    };
  }
}
