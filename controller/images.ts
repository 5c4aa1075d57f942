import { randomUUID } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../common/errors.js';
import { holdsLease } from './jobs/index.js';
import type { JobBook } from './job-book.js';
import { own, type ImageRecord, type Store, type Workload } from './store/index.js';

export type ImageMime = 'image/png' | 'image/jpeg';

export interface IncomingImage {
  data: Buffer;
  mime: ImageMime;
  width: number;
  height: number;
}

const EXTENSION: Record<ImageMime, string> = { 'image/png': 'png', 'image/jpeg': 'jpg' };

/** Image files live under <images dir>/<workload name>/; the datastore holds their records. */
export class ImageLibrary {
  private readonly knownDirs = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly jobs: JobBook,
    readonly imagesDir: string,
  ) {}

  /** Keeps an original and queues its job; resolves once both the file and the record are on disk. */
  async addOriginal(workload: Workload, image: IncomingImage): Promise<ImageRecord> {
    const id = randomUUID();
    const file = path.posix.join(workload.name, `${id}.${EXTENSION[image.mime]}`);
    // a fresh name that no record points at until the write is done: no temporary file needed
    await this.writeNew(file, image.data);
    const record = this.record(id, workload, 'original', null, file, image);
    const job = this.jobs.create(workload.id, id);
    record.job_id = job.id;
    this.store.data.images[id] = record;
    this.store.originals.add(workload.id, id);
    this.store.touch('images', id);
    await this.store.commit();
    return record;
  }

  /**
   * Keeps a worker's filtered image for a job it holds. Idempotent per job: a retried job
   * replaces the filtered image (same id), never adds a second one.
   */
  async addFiltered(jobId: string, workerId: string, leaseId: string, image: IncomingImage): Promise<ImageRecord> {
    const job = own(this.store.data.jobs, jobId);
    if (!holdsLease(job, workerId, leaseId)) throw new AppError('conflict', 'the lease on this job has moved on: result discarded');
    const workload = this.store.data.workloads[job.workload_id];
    const original = this.store.data.images[job.image_id];
    if (!workload || !original) throw new AppError('not_found', 'the job\'s workload or original is gone');
    const id = job.filtered_image_id ?? randomUUID();
    const file = path.posix.join(workload.name, `${original.id}.filtered.${EXTENSION[image.mime]}`);
    await this.writeAtomically(file, image.data);
    // the lease may have moved on while the file was written; the file is the same either way
    if (!holdsLease(own(this.store.data.jobs, jobId), workerId, leaseId)) {
      throw new AppError('conflict', 'the lease on this job has moved on: result discarded');
    }
    const record = this.record(id, workload, 'filtered', original.id, file, image);
    this.store.data.images[id] = record;
    job.filtered_image_id = id;
    this.store.touch('images', id);
    this.store.touch('jobs', job.id);
    await this.store.commit();
    return record;
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
    if (!image || job?.lease?.worker_id !== workerId) throw new AppError('not_found', `no image with id "${id}" in this worker's jobs`);
    return image;
  }

  pathOf(image: ImageRecord): string {
    return path.join(this.imagesDir, image.file);
  }

  private record(id: string, workload: Workload, type: ImageRecord['type'], source: string | null, file: string, image: IncomingImage): ImageRecord {
    return {
      id,
      workload_id: workload.id,
      owner: workload.owner,
      type,
      source_image_id: source,
      job_id: null,
      file,
      mime: image.mime,
      bytes: image.data.length,
      width: image.width,
      height: image.height,
      created_at: new Date().toISOString(),
      seq: this.store.originals.nextSeq(),
    };
  }

  private async writeNew(file: string, data: Buffer): Promise<void> {
    const target = path.join(this.imagesDir, file);
    await this.ensureDir(path.dirname(target));
    await writeFile(target, data, { flag: 'wx' });
  }

  /** For a file a record may already point at (a retried job's result): readers see the old or the new file, never half of one. */
  private async writeAtomically(file: string, data: Buffer): Promise<void> {
    const target = path.join(this.imagesDir, file);
    await this.ensureDir(path.dirname(target));
    const temporary = `${target}.${randomUUID()}.tmp`;
    await writeFile(temporary, data);
    await rename(temporary, target);
  }

  /** mkdir once per workload directory, not once per file (it showed in profiles). */
  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.knownDirs.add(dir);
  }
}
