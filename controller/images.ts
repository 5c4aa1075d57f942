import { randomUUID } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../common/errors.js';
import type { FilteredUpload } from '../common/protocol.js';
import { holdsLease } from './jobs/index.js';
import type { JobBook } from './job-book.js';
import { own, type ImageRecord, type Store, type Workload } from './store/index.js';

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

/** Image files live under <images dir>/<workload name>/; the datastore holds their records. */
export class ImageLibrary {
  private readonly knownDirs = new Set<string>();
  /** Uploads land here first, on the same file system as their final place, so keeping one is a rename. */
  private readonly stagingDir: string;

  constructor(
    private readonly store: Store,
    private readonly jobs: JobBook,
    readonly imagesDir: string,
  ) {
    // workload names start with a letter or digit, so no workload directory can be this one
    this.stagingDir = path.join(imagesDir, '.incoming');
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
    await this.keep(image.content, file, 'new');
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
   * Keeps a worker's filtered image for a job it holds, and completes the job. Idempotent per
   * job: a retried job replaces the filtered image (same id), never adds a second one.
   */
  async addFiltered(upload: FilteredUpload, workerId: string, image: IncomingImage): Promise<ImageRecord> {
    const { job_id: jobId, lease_id: leaseId } = upload;
    const job = own(this.store.data.jobs, jobId);
    if (!holdsLease(job, workerId, leaseId))
      throw new AppError('conflict', 'the lease on this job has moved on: result discarded');
    const workload = this.store.data.workloads[job.workload_id];
    const original = this.store.data.images[job.image_id];
    if (!workload || !original) throw new AppError('not_found', "the job's workload or original is gone");
    const id = job.filtered_image_id ?? randomUUID();
    const file = path.posix.join(workload.name, `${original.id}.filtered.${EXTENSION[image.mime]}`);
    // a retried job's result replaces the old file in one rename: readers see the old or the new file, never half of one
    await this.keep(image.content, file, 'replace');
    // the lease may have moved on while the file was written; the file is the same either way
    if (!holdsLease(own(this.store.data.jobs, jobId), workerId, leaseId)) {
      throw new AppError('conflict', 'the lease on this job has moved on: result discarded');
    }
    const record = this.record(id, workload, 'filtered', original.id, file, image);
    this.store.data.images[id] = record;
    job.filtered_image_id = id;
    this.store.touch('images', id);
    this.store.touch('jobs', job.id);
    // the stored result is the job's completion: one commit, and no separate report on the bus
    this.jobs.complete(jobId, workerId, leaseId, id);
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
   * Puts the bytes at `file`; one that may `replace` a file goes in one step: a reader sees the old
   * file or the new one, never half of one. Bytes in memory (an upload small enough to stay there,
   * at most 512 KiB) are written synchronously: copying them into the page cache takes microseconds,
   * where the asynchronous open, write and close were three trips through the thread pool and a
   * third of the server's CPU per tiny image.
   */
  private async keep(content: IncomingContent, file: string, mode: 'new' | 'replace'): Promise<void> {
    const target = path.join(this.imagesDir, file);
    await this.ensureDir(path.dirname(target));
    if (content.kind === 'staged') return rename(content.path, target);
    if (mode === 'new') {
      writeFileSync(target, content.data, { flag: 'wx' });
      return;
    }
    const staged = this.stagingPath();
    try {
      writeFileSync(staged, content.data, { flag: 'wx' });
      renameSync(staged, target);
    } catch (error) {
      await this.discardStaged(staged);
      throw error;
    }
  }

  /** mkdir once per workload directory, not once per file (it showed in profiles). */
  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.knownDirs.add(dir);
  }
}
