// A controller's books without its sockets: the store, the job book, the worker registry and the
// scheduling port over them, on a clock the test moves. Originals are recorded as the image library
// records them (no files), and records can be watched for reads.
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Resources } from '../../common/protocol.js';
import { JobBook } from '../../controller/job-book.js';
import type { RetryPolicy } from '../../controller/jobs/index.js';
import { schedulingPort, type SchedulingPort } from '../../controller/scheduling.js';
import { openStore, type Job, type Store, type Workload } from '../../controller/store/index.js';
import { WorkerRegistry } from '../../controller/workers/index.js';
import { createWorkload } from '../../controller/workloads.js';
import { imageRecord } from '../helpers/records.js';
import { iso, leaseId, T0, tempDir, type TempDir } from './helpers.js';

export const LEASE_MS = 10_000;
export const POLICY: RetryPolicy = { maxAttempts: 3, backoff: { baseMs: 1000, maxMs: 4000 } };
const RESOURCES: Resources = { cpu_load: 10, cores: 2, mem_free: 1e9, mem_total: 2e9, gpu: { present: false } };

export interface Books {
  store: Store;
  jobs: JobBook;
  registry: WorkerRegistry;
  port: SchedulingPort;
  clock: { now: number };
}

/** The books over the store in `dir`, as a (re)started controller builds them. */
export async function openBooks(dir: string, clock: { now: number }): Promise<Books> {
  return booksOver(await openStore(dir), clock);
}

/** The books over an open store (lowdb or PostgreSQL), as a (re)started controller builds them. */
export function booksOver(store: Store, clock: { now: number }): Books {
  const jobs = new JobBook(store, POLICY, LEASE_MS, 600_000, {}, () => clock.now);
  const registry = new WorkerRegistry();
  const port = schedulingPort({ store, jobs, registry }, () => () => undefined);
  return { store, jobs, registry, port, clock };
}

/** Fresh books in a temporary directory for each test of the describe that calls it (clock at T0). */
export function booksPerTest(): { readonly books: Books; readonly dir: string; reopen(): Promise<Books> } {
  let dir: TempDir | undefined;
  let books: Books | undefined;
  beforeEach(async () => {
    dir = await tempDir();
    books = await openBooks(dir.path, { now: T0 });
  });
  afterEach(async () => {
    await books?.store.close();
    await dir?.remove();
  });
  const current = (): Books => books ?? expect.fail('no books outside a test');
  const path = (): string => dir?.path ?? expect.fail('no directory outside a test');
  return {
    get books() {
      return current();
    },
    /** The test's directory: the store's, and room for image files. */
    get dir() {
      return path();
    },
    /** Closes the store and builds the books again over what it wrote, as a restarted controller does. */
    async reopen() {
      await current().store.close();
      books = await openBooks(path(), current().clock);
      return books;
    },
  };
}

export function addWorkload(books: Books, owner: string, filter = 'grayscale', tags: string[] = []): Workload {
  return createWorkload(books.store, owner, undefined, filter, tags);
}

/** An original uploaded to the workload, recorded as the image library records it, and its queued job. */
export function upload(books: Books, workload: Workload, bytes = 1000): Job {
  const { store, jobs, clock } = books;
  const imageId = randomUUID();
  const seq = store.originals.nextSeq();
  const job = jobs.create(workload.id, imageId);
  const created_at = iso(clock.now);
  store.change('images', imageId);
  store.data.images[imageId] = imageRecord(workload, 'original', {
    id: imageId,
    job_id: job.id,
    bytes,
    seq,
    created_at,
  });
  store.originals.add(workload.id, imageId);
  return job;
}

/** The job's filtered image, recorded, and the job completed with it by the holder of its lease. */
export function complete(books: Books, job: Job): void {
  const { store, jobs, clock } = books;
  const current = store.data.jobs[job.id]!;
  const workload = store.data.workloads[current.workload_id]!;
  const seq = store.originals.nextSeq();
  const record = imageRecord(workload, 'filtered', {
    source_image_id: current.image_id,
    bytes: 500,
    seq,
    created_at: iso(clock.now),
  });
  const result = jobs.complete(job.id, current.lease!.worker_id, leaseId(current), record);
  if (!result.ok) expect.fail(`completion refused: ${result.refusal}`);
  store.change('images', record.id);
  store.data.images[record.id] = record;
}

/** A live worker in the registry, with `slots` free. */
export function addWorker(books: Books, name: string, filters: string[], tags: string[] = [], slots = 1): void {
  const record = {
    id: name,
    name,
    instance_id: name,
    tags,
    rpc_address: 'tcp://127.0.0.1:1',
    slots,
    engine: 'sharp' as const,
    filters,
    registered_at: iso(books.clock.now),
    left_at: null,
  };
  books.registry.add(record, `token-of-${name}`, RESOURCES, books.clock.now);
}

/** Reads of one record collection, by key, and walks over all of it (keys listed). */
export interface Reads {
  byKey: Map<string, number>;
  walks: number;
  total(): number;
  stop(): void;
}

/**
 * Counts every read of the collection's records from now on (a lookup, an `in` or `hasOwn`, a listing
 * of the keys) by putting a counting proxy in its place; stop() puts the collection back.
 */
export function watchReads<K extends 'jobs' | 'images' | 'workloads'>(store: Store, collection: K): Reads {
  const target = store.data[collection];
  const reads: Reads = {
    byKey: new Map(),
    walks: 0,
    total: () => [...reads.byKey.values()].reduce((sum, count) => sum + count, 0) + reads.walks,
    stop: () => {
      store.data[collection] = target;
    },
  };
  const read = (key: string | symbol): void => {
    if (typeof key === 'string') reads.byKey.set(key, (reads.byKey.get(key) ?? 0) + 1);
  };
  store.data[collection] = new Proxy(target, {
    get(records, key, receiver) {
      read(key);
      return Reflect.get(records, key, receiver);
    },
    has(records, key) {
      read(key);
      return Reflect.has(records, key);
    },
    getOwnPropertyDescriptor(records, key) {
      read(key);
      return Reflect.getOwnPropertyDescriptor(records, key);
    },
    ownKeys(records) {
      reads.walks += 1;
      return Reflect.ownKeys(records);
    },
  });
  return reads;
}
