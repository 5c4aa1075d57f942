// The datastore's shape: one JSON document, written atomically by one process.
import type { Operation } from '../../common/operations/index.js';
import type { Resources } from '../../common/protocol.js';

export type JobState = 'queued' | 'assigned' | 'running' | 'done' | 'failed' | 'cancelled';

export interface User {
  username: string;
  password_hash: string; // scrypt$N$salt$hash, never the password
  created_at: string;
}

export interface RevokedToken {
  jti: string;
  expires_at: number; // epoch ms; pruned after it passes
}

export interface WorkerRecord {
  id: string;
  name: string;
  instance_id: string;
  tags: string[];
  rpc_address: string;
  slots: number;
  engine: 'sharp' | 'jimp';
  filters: string[];
  /** What its engine can do (absent from workers that did not say: see workload-needs.ts). */
  operations?: string[];
  formats?: string[];
  registered_at: string;
  left_at: string | null;
  /**
   * The token the worker holds now (its id and expiry, epoch ms), revoked when the record gets another
   * or its name goes to a new process. Absent in records from before it was kept.
   */
  token?: { jti: string; expires_at: number } | null;
}

export interface Workload {
  id: string;
  owner: string;
  name: string;
  /** The course filter; null for a workload of operations. */
  filter: string | null;
  /** The chain a workload of operations runs, every default filled in; absent for a course filter's. */
  operations?: Operation[] | null;
  tags: string[];
  created_at: string;
  /** When its owner cancelled it (its unfinished jobs ended `cancelled`); absent or null while it was not. */
  cancelled_at?: string | null;
}

export type ImageType = 'original' | 'filtered';

export interface ImageRecord {
  id: string;
  workload_id: string;
  owner: string;
  type: ImageType;
  source_image_id: string | null; // the original a filtered image was made from
  job_id: string | null; // an original's job
  file: string; // relative to the images dir: <workload_name>/<file name>
  mime: string;
  bytes: number;
  width: number;
  height: number;
  created_at: string;
  /** Upload order across the store: orders a workload's originals without a list that grows in its record. */
  seq: number;
}

export interface Lease {
  worker_id: string;
  lease_id: string;
  expires_at: number; // epoch ms
}

export interface Job {
  id: string;
  workload_id: string;
  image_id: string;
  state: JobState;
  attempts: number;
  lease: Lease | null;
  not_before: number; // epoch ms: retry backoff
  error: string | null;
  filtered_image_id: string | null;
  created_at: string;
  updated_at: string;
  /**
   * When its current (or last) run started: the worker accepted it. Null before its first run, and in records
   * written before the field existed (a running job's updated_at is its start there).
   */
  started_at: string | null;
  finished_at: string | null;
}

/** A worker's resources at one moment: a heartbeat's report, or the mean of a minute of them. */
export interface WorkerSample {
  t: number; // epoch ms
  cpu_load: number; // percent
  mem_used: number; // fraction 0..1
  gpu_utilization?: number; // percent, when the GPU reports it
  gpu_memory_free_mb?: number;
}

/**
 * One minute of a worker's samples, one per heartbeat, written once when the minute is over. Keyed
 * `<worker id>/<start>`; folded into the worker's hour record once the hour after its own is over.
 */
export interface WorkerMinute {
  worker_id: string;
  start: number; // epoch ms, a whole minute
  samples: WorkerSample[];
}

/** The key of a worker's minute or hour record: `<worker id>/<start>`. */
export function workerHistoryKey(workerId: string, start: number): string {
  return `${workerId}/${start}`;
}

/** One hour of a worker's history, one point (a minute's mean) per minute. Keyed `<worker id>/<start>`; kept a week. */
export interface WorkerHour {
  worker_id: string;
  start: number; // epoch ms, a whole hour
  points: WorkerSample[];
}

/** What a worker did, keyed by its id: written when something happens to it, and its counters about once a minute. */
export interface WorkerActivity {
  worker_id: string;
  /** Registrations: its first, and each again (after a server restart, a lost session). */
  registrations: number;
  /** When, the newest last (the last few only). */
  registered: string[];
  left_at: string | null;
  /** Times it was declared dead (silent past its lease). */
  deaths: number;
  /** When, and when it was heard again (null: not since), the newest last (the last few only). */
  died: { at: string; back_at: string | null }[];
  /** Jobs it completed; jobs that failed for good while it held them; runs it lost (requeued). */
  jobs_done: number;
  jobs_failed: number;
  jobs_requeued: number;
  /** Bytes of the results it uploaded (into the server), and of the originals it downloaded (out of it). */
  bytes_in: number;
  bytes_out: number;
  /** Its last heartbeat (epoch ms), and what it reported then. */
  last_seen: number | null;
  resources: Resources | null;
}

/**
 * An upload slot (POST /uploads) not yet confirmed: the image id its original gets, and the key its presigned PUT
 * writes. Kept with the records so that any server that leads later honours it; gone once confirmed or expired.
 */
export interface UploadSlotRecord {
  id: string;
  owner: string;
  workload_id: string;
  key: string;
  mime: 'image/png' | 'image/jpeg';
  /** The length the client declared: its PUT takes exactly this many bytes. Absent in slots from before it was kept. */
  bytes?: number;
  expires_at: number; // epoch ms
}

export interface Data {
  version: 1;
  users: Record<string, User>;
  revoked_tokens: Record<string, RevokedToken>;
  workers: Record<string, WorkerRecord>;
  workloads: Record<string, Workload>;
  images: Record<string, ImageRecord>;
  jobs: Record<string, Job>;
  worker_minutes: Record<string, WorkerMinute>;
  worker_hours: Record<string, WorkerHour>;
  worker_activity: Record<string, WorkerActivity>;
  upload_slots: Record<string, UploadSlotRecord>;
}

/** The keyed record collections of the document. */
export type Collection = Exclude<keyof Data, 'version'>;

// a snapshot or journal from before a collection existed loads with that collection empty
export const COLLECTIONS: readonly Collection[] = [
  'users',
  'revoked_tokens',
  'workers',
  'workloads',
  'images',
  'jobs',
  'worker_minutes',
  'worker_hours',
  'worker_activity',
  'upload_slots',
];

export function emptyData(): Data {
  return {
    version: 1,
    users: {},
    revoked_tokens: {},
    workers: {},
    workloads: {},
    images: {},
    jobs: {},
    worker_minutes: {},
    worker_hours: {},
    worker_activity: {},
    upload_slots: {},
  };
}

/** Look up a record by a key that came from outside: never an inherited property such as `__proto__`. */
export function own<T>(records: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(records, key) ? records[key] : undefined;
}
