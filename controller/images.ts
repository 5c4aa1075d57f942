import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { AppError } from '../common/errors.js';
import type { FilteredUpload } from '../common/protocol.js';
import type { Refusal } from './jobs/index.js';
import type { DiskRoom } from './disk-room.js';
import type { ImageStore, IncomingContent, OpenedObject } from './image-store/index.js';
import type { JobBook } from './job-book.js';
import type { UserQuotas } from './quotas.js';
import {
  CommitOutcomeUnknown,
  own,
  type ImageRecord,
  type ImageType,
  type Store,
  type Workload,
} from './store/index.js';

const STALE_RESULT: Record<Refusal, string> = {
  no_job: 'the job is gone (its image or workload was deleted): result discarded',
  cancelled: 'the job was cancelled: result discarded',
  lease_moved: 'the lease on this job has moved on: result discarded',
  wrong_state: 'the job is no longer running: result discarded',
  in_backoff: 'the job is waiting to be retried: result discarded',
  lease_live: 'the job is no longer running: result discarded',
  in_time: 'the job is no longer running: result discarded',
  wrong_result: "the result is not of this job's original: discarded",
};

/** 410 when the job is gone or cancelled (nothing of it may come back), 409 when only its lease moved on. */
export function staleResult(refusal: Refusal): AppError {
  return new AppError(refusal === 'no_job' || refusal === 'cancelled' ? 'gone' : 'conflict', STALE_RESULT[refusal]);
}

/** 409 (or 410) unless the worker still holds the job's lease and the job can still complete. */
export function refuseStale(jobs: JobBook, jobId: string, workerId: string, leaseId: string): void {
  const refusal = jobs.holderRefusal('complete', jobId, workerId, leaseId);
  if (refusal) throw staleResult(refusal);
}

export type ImageMime = 'image/png' | 'image/jpeg' | 'image/webp' | 'image/avif';

export type { IncomingContent } from './image-store/index.js';

/** An image's bytes as they arrive: to be put in the store, or already put there (at `key`) by their sender. */
export type ImageContent = IncomingContent | { kind: 'stored'; key: string };

export interface IncomingImage {
  content: ImageContent;
  bytes: number;
  mime: ImageMime;
  width: number;
  height: number;
  /** Its EXIF orientation turns it a quarter: read upright, it is `height` wide. */
  turned?: boolean;
}

export const EXTENSION: Record<ImageMime, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/avif': 'avif',
};

/** Where an original goes: `<workload name>/<image id>.<ext>`. */
export function originalKey(workload: Pick<Workload, 'name'>, imageId: string, mime: ImageMime): string {
  return path.posix.join(workload.name, `${imageId}.${EXTENSION[mime]}`);
}

/**
 * Where a lease's result goes: each lease writes a key of its own, so a late result can never touch the
 * accepted one. The lease id is the server's own: safe in a key.
 */
export function resultKey(
  workload: Pick<Workload, 'name'>,
  originalId: string,
  leaseId: string,
  mime: ImageMime,
): string {
  const lease = leaseId.replaceAll('-', '').slice(0, 12);
  return path.posix.join(workload.name, `${originalId}.filtered-${lease}.${EXTENSION[mime]}`);
}

/** Images stored, and their bytes, by type. */
export type ImageTotals = Record<ImageType, { images: number; bytes: number }>;

function add(totals: { images: number; bytes: number }, image: ImageRecord, sign: 1 | -1): void {
  totals.images += sign;
  totals.bytes += sign * image.bytes;
}

/**
 * The images: their files (ImageFiles, under <images dir>/<workload name>/) and their records in the
 * datastore. A record is committed only after its file is durable, and a file whose record is refused
 * or does not commit is removed: no record without its file, no file without its record.
 */
export class ImageLibrary {
  /** Counted once at load, then kept as images are stored and deleted (or taken back by a failed commit). */
  private readonly kept: ImageTotals = { original: { images: 0, bytes: 0 }, filtered: { images: 0, bytes: 0 } };
  /** Deleted since the start. */
  private readonly removed: ImageTotals = { original: { images: 0, bytes: 0 }, filtered: { images: 0, bytes: 0 } };

  constructor(
    private readonly store: Store,
    private readonly jobs: JobBook,
    private readonly files: ImageStore,
    private readonly room: DiskRoom,
    private readonly quotas: UserQuotas,
  ) {
    // the records count against the quotas from here on (the quotas start empty)
    for (const image of store.values('images')) this.count(image, 1);
    store.onRollback((_restored, undone) => {
      for (const [id, was] of undone.get('images') ?? []) {
        if (was) this.count(was as ImageRecord, -1);
        const image = own(store.data.images, id);
        if (image) this.count(image, 1);
        // a deletion taken back
        if (image && !was) add(this.removed[image.type], image, -1);
      }
    });
  }

  /** Images stored and their bytes, by type, as kept (no walk over the images). */
  totals(): Readonly<ImageTotals> {
    return this.kept;
  }

  /** Images deleted since the server started, and their bytes, by type. */
  removedTotals(): Readonly<ImageTotals> {
    return this.removed;
  }

  /**
   * At start: empties the staging area and removes the files and folders no record points at, but those
   * younger than `graceMs`; returns how many.
   */
  prepare(graceMs: number): Promise<number> {
    const folders = new Set(this.store.values('workloads').map((workload) => workload.name));
    const referenced = new Set(this.store.values('images').map((image) => image.file));
    return this.files.prepare(referenced, folders, graceMs);
  }

  /** A new workload's folder in the images space, made before its record commits. */
  makeFolder(workload: Workload): Promise<void> {
    return this.files.makeFolder(workload.name);
  }

  /** A deleted workload's folder, and every file left in it (its records are gone and committed). */
  removeFolder(workload: Workload): Promise<void> {
    return this.files.removeFolder(workload.name);
  }

  /**
   * Takes an image record out of the datastore, with the counts that follow it (totals, the owner's quota,
   * the workload's originals); the caller commits, then removes the file with `removeFiles`.
   */
  forget(image: ImageRecord): void {
    const record = own(this.store.data.images, image.id);
    if (!record) return;
    delete this.store.data.images[image.id];
    // deleted untouched: the record itself is what a rollback puts back (a copy of each would make deleting a
    // large workload hold the event loop twice as long)
    this.store.changed('images', image.id, record);
    this.count(image, -1);
    add(this.removed[image.type], image, 1);
    if (image.type === 'original') this.store.originals.remove(image.workload_id, image.id);
  }

  /** The files of forgotten images, once their removal committed. */
  async removeFiles(images: readonly ImageRecord[]): Promise<void> {
    for (const image of images) await this.files.remove(image.file);
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

  /**
   * Keeps an original and queues its job; resolves once both the file and the record are durable. A
   * workload deleted (404) or cancelled (409) while the file was being written keeps nothing.
   */
  async addOriginal(workload: Workload, image: IncomingImage, id: string = randomUUID()): Promise<ImageRecord> {
    this.refuseUploads(workload);
    this.room.check(image.content.kind === 'memory' ? image.bytes : 0);
    // counted from here on, so that uploads in flight together cannot pass the quota (the record counts once kept)
    const release = this.quotas.reserve(workload.owner, image.bytes);
    try {
      const file = originalKey(workload, id, image.mime);
      try {
        await this.putContent(image, file);
        this.refuseUploads(workload);
      } catch (error) {
        await this.dropLate(file, workload);
        // a put into the folder of a workload deleted meanwhile fails: the deletion is the answer
        this.refuseUploads(workload);
        throw error;
      }
      const record = this.record(id, workload, 'original', null, file, image);
      const job = this.jobs.create(workload.id, id);
      record.job_id = job.id;
      this.put(record);
      this.store.originals.add(workload.id, id);
      await this.commitOrRemove(file);
      return record;
    } finally {
      release();
    }
  }

  /** 404 once the workload is deleted (as for any missing workload), 409 once it is cancelled. */
  private refuseUploads(workload: Workload): void {
    if (own(this.store.data.workloads, workload.id) !== workload)
      throw new AppError('not_found', `no workload with id "${workload.id}": it was deleted`);
    if (workload.cancelled_at)
      throw new AppError('conflict', `workload "${workload.name}" was cancelled: it takes no more images`);
  }

  /**
   * A file put for a workload that was deleted or cancelled meanwhile (or whose put failed): it goes, and
   * so does the folder it may have made again if its workload is gone.
   */
  private async dropLate(file: string, workload: Workload): Promise<void> {
    await this.files.remove(file);
    if (!this.store.workloadIndex.nameTaken(workload.name)) await this.files.removeFolderIfEmpty(workload.name);
  }

  /**
   * Keeps a worker's filtered image for a job it holds, and completes the job: one commit, answered
   * 201. Each lease writes a file of its own, so a late result can never touch the accepted one. A
   * refused completion (the lease moved on, the job is no longer running) keeps nothing, no record and
   * no file, and is answered 409.
   */
  async addFiltered(upload: FilteredUpload, workerId: string, image: IncomingImage): Promise<ImageRecord> {
    const { job_id: jobId, lease_id: leaseId } = upload;
    refuseStale(this.jobs, jobId, workerId, leaseId);
    const job = own(this.store.data.jobs, jobId);
    const workload = job && own(this.store.data.workloads, job.workload_id);
    const original = job && own(this.store.data.images, job.image_id);
    const lease = job?.lease;
    if (!job || !workload || !original || !lease) {
      throw new AppError('not_found', "the job's workload or original is gone");
    }
    const file = resultKey(workload, original.id, lease.lease_id, image.mime);
    try {
      await this.putContent(image, file);
    } catch (error) {
      // the folder may have been removed with its workload meanwhile: then the job is gone, and that is the answer
      await this.dropLate(file, workload);
      refuseStale(this.jobs, jobId, workerId, leaseId);
      throw error;
    }
    const record = this.record(randomUUID(), workload, 'filtered', original.id, file, image);
    const completion = this.jobs.complete(jobId, workerId, leaseId, record);
    if (!completion.ok) {
      await this.dropLate(file, workload);
      throw staleResult(completion.refusal);
    }
    this.put(record);
    await this.commitOrRemove(file);
    return record;
  }

  /** Puts the bytes at `key`; bytes already stored by their sender must be at that very key. */
  private async putContent(image: IncomingImage, key: string): Promise<void> {
    if (image.content.kind !== 'stored') return this.files.put(image.content, key, image.mime);
    if (image.content.key !== key) throw new Error(`stored at "${image.content.key}", expected at "${key}"`);
  }

  /** Commits; when the commit fails (everything not on disk was rolled back) the file goes too. */
  private async commitOrRemove(file: string): Promise<void> {
    try {
      await this.store.commit();
    } catch (error) {
      // a commit that may have been kept may name the file: the start-up sweep of the reload removes it if not
      if (!(error instanceof CommitOutcomeUnknown)) await this.files.remove(file);
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
    add(this.kept[image.type], image, sign);
    this.quotas.counted(image, sign);
  }

  /** An image the user owns, or 404. */
  find(owner: string, id: string): ImageRecord {
    const image = own(this.store.data.images, id);
    if (!image || image.owner !== owner) throw new AppError('not_found', `no image with id "${id}"`);
    return image;
  }

  /**
   * The original of a job the worker holds the lease on, or 404: a worker token reaches nothing else. 410
   * when its job was cancelled: the worker drops the job, it is not its failure.
   */
  findForWorker(workerId: string, id: string): ImageRecord {
    const image = own(this.store.data.images, id);
    const job = image?.job_id ? this.store.data.jobs[image.job_id] : undefined;
    if (job?.state === 'cancelled') throw new AppError('gone', `the job of image "${id}" was cancelled`);
    if (!image || job?.lease?.worker_id !== workerId)
      throw new AppError('not_found', `no image with id "${id}" in this worker's jobs`);
    return image;
  }

  /** The image's file on this machine's disk, when the store keeps it there (else null: see `open`). */
  localPath(image: ImageRecord): string | null {
    return this.files.localPath(image.file);
  }

  /** The size of the image's object as stored, or null when it is missing. */
  async sizeOf(image: ImageRecord): Promise<number | null> {
    return (await this.files.inspect(image.file, 0))?.size ?? null;
  }

  /** The image's bytes as a stream, or null when its object is missing. */
  open(image: ImageRecord): Promise<OpenedObject | null> {
    return this.files.open(image.file);
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
