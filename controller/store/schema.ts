// The datastore's shape: one JSON document, written atomically by one process.

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
  filter: string;
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

export interface Data {
  version: 1;
  users: Record<string, User>;
  revoked_tokens: Record<string, RevokedToken>;
  workers: Record<string, WorkerRecord>;
  workloads: Record<string, Workload>;
  images: Record<string, ImageRecord>;
  jobs: Record<string, Job>;
}

/** The keyed record collections of the document. */
export type Collection = Exclude<keyof Data, 'version'>;

export const COLLECTIONS: readonly Collection[] = ['users', 'revoked_tokens', 'workers', 'workloads', 'images', 'jobs'];

export function emptyData(): Data {
  return { version: 1, users: {}, revoked_tokens: {}, workers: {}, workloads: {}, images: {}, jobs: {} };
}

/** Look up a record by a key that came from outside: never an inherited property such as `__proto__`. */
export function own<T>(records: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(records, key) ? records[key] : undefined;
}
