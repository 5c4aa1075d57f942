import { randomUUID } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../common/errors.js';
import type { FilteredUpload } from '../common/protocol.js';
import type { Refusal } from './jobs/index.js';
import type { JobBook } from './job-book.js';
import { own, type ImageRecord, type ImageType, type Store, type Workload } from './store/index.js';

const STALE_RESULT: Record<Refusal, string> = {
  no_job: 'no such job: result discarded',
  lease_moved: 'the lease on this job has moved on: result discarded',
  wrong_state: 'the job is no longer running: result discarded',
  in_backoff: 'the job is waiting to be retried: result discarded',
  lease_live: 'the job is no longer running: result discarded',
  wrong_result: "the result is not of this job's original: discarded",
};

function staleResult(refusal: Refusal): AppError {
  return new AppError('conflict', STALE_RESULT[refusal]);
}

export type ImageMime = 'image/png' | 'image/jpeg';

/** An upload's bytes: in memory, or already on disk at a staging path the library gave out (see stagingPath()). */
export type IncomingContent = { kind: 'memory'; data: Buffer } | { kind: 'staged'; path: string };

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

/** Image files live under <images dir>/<workload name>/; the datastore holds their records. */
export class ImageLibrary {
  private readonly knownDirs = new Set<string>();
  /** Uploads land here first, on the same file system as their final place, so keeping one is a rename. */
  private readonly stagingDir: string;
  /** Counted once at load, then kept as images are stored (images are never deleted). */
  private readonly kept: ImageTotals = { original: { images: 0, bytes: 0 }, filtered: { images: 0, bytes: 0 } };

  constructor(
    private readonly store: Store,
    private readonly jobs: JobBook,
    readonly imagesDir: string,
  ) {
    // workload names start with a letter or digit, so no workload directory can be this one
    this.stagingDir = path.join(imagesDir, '.incoming');
    // a walk of the keys: Object.values would first copy every record into one array, which at a
    // million images costs seconds more in the garbage collector
    const records = store.data.images;
    for (const id in records) this.count(records[id]!, 1);
  }

  /** Images stored and their bytes, by type, as kept (no walk over the images). */
  totals(): Readonly<ImageTotals> {
    return this.kept;
  }

  /** Empties the staging directory: what a killed process left there was never acknowledged. */
  async prepare(): Promise<void> {
    await rm(this.stagingDir, { recursive: true, force: true });
    await mkdir(this.stagingDir, { recursive: true });
  }

  /** A fresh path to stream an upload to before addOriginal or addFiltered keeps it. */
  stagingPath(): string {
    return path.join(this.stagingDir, randomUUID());
  }

  /** Removes a staged upload that was not kept (refused, or failed); a kept one is already gone. */
  async discardStaged(staged: string): Promise<void> {
    if (path.dirname(staged) !== this.stagingDir) return;
    await unlink(staged).catch(() => undefined);
  }

  /** Keeps an original and queues its job; resolves once both the file and the record are on disk. */
  async addOriginal(workload: Workload, image: IncomingImage): Promise<ImageRecord> {
    const id = randomUUID();
    const file = path.posix.join(workload.name, `${id}.${EXTENSION[image.mime]}`);
    // a fresh name that no record points at until the file is complete: it can be written in place
    await this.keep(image.content, file);
    const record = this.record(id, workload, 'original', null, file, image);
    const job = this.jobs.create(workload.id, id);
    record.job_id = job.id;
    this.put(record);
    this.store.originals.add(workload.id, id);
    await this.store.commit();
    return record;
  }

  /**
   * Keeps a worker's filtered image for a job it holds, and completes the job: one commit, answered
   * 201. A refused completion (the lease moved on, the job is no longer running) keeps nothing, no
   * record and no file, and is answered 409.
   */
  async addFiltered(upload: FilteredUpload, workerId: string, image: IncomingImage): Promise<ImageRecord> {
    const { job_id: jobId, lease_id: leaseId } = upload;
    this.refuseStale(jobId, workerId, leaseId);
    const job = own(this.store.data.jobs, jobId);
    const workload = job && own(this.store.data.workloads, job.workload_id);
    const original = job && own(this.store.data.images, job.image_id);
    if (!job || !workload || !original) throw new AppError('not_found', "the job's workload or original is gone");
    const file = path.posix.join(workload.name, `${original.id}.filtered.${EXTENSION[image.mime]}`);
    const target = path.join(this.imagesDir, file);
    await this.ensureDir(path.dirname(target));
    const staged = image.content.kind === 'staged' ? image.content.path : this.stage(image.content.data);
    // from here to the completion nothing is awaited: the lease checked is the lease the result is kept under
    try {
      this.refuseStale(jobId, workerId, leaseId);
      // a retried job's result replaces the file in one rename: readers see the old or the new file, never half
      renameSync(staged, target);
    } catch (error) {
      await this.discardStaged(staged);
      throw error;
    }
    const record = this.record(job.filtered_image_id ?? randomUUID(), workload, 'filtered', original.id, file, image);
    const completion = this.jobs.complete(jobId, workerId, leaseId, record);
    if (!completion.ok) {
      rmSync(target, { force: true });
      throw staleResult(completion.refusal);
    }
    this.put(record);
    await this.store.commit();
    return record;
  }

  /** Stores an image record (a retried result replaces its own), keeping the totals in step. */
  private put(record: ImageRecord): void {
    const replaced = own(this.store.data.images, record.id);
    if (replaced) this.count(replaced, -1);
    this.store.data.images[record.id] = record;
    this.count(record, 1);
    this.store.touch('images', record.id);
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

  /** Bytes held in memory, written to a fresh staging file (so that keeping them is one rename). */
  private stage(data: Buffer): string {
    const staged = this.stagingPath();
    try {
      writeFileSync(staged, data, { flag: 'wx' });
    } catch (error) {
      rmSync(staged, { force: true });
      throw error;
    }
    return staged;
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
    return path.join(this.imagesDir, image.file);
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

  /**
   * Puts a new original's bytes at `file`, a fresh name that no record points at until the file is
   * complete. Bytes in memory (an upload small enough to stay there, at most 512 KiB) are written
   * synchronously: copying them into the page cache takes microseconds, where the asynchronous open,
   * write and close were three trips through the thread pool and a third of the server's CPU per tiny image.
   */
  private async keep(content: IncomingContent, file: string): Promise<void> {
    const target = path.join(this.imagesDir, file);
    await this.ensureDir(path.dirname(target));
    if (content.kind === 'staged') return rename(content.path, target);
    writeFileSync(target, content.data, { flag: 'wx' });
  }

  /** mkdir once per workload directory, not once per file (it showed in profiles). */
  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.knownDirs.add(dir);
  }
}
