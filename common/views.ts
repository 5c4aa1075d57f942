// The JSON views the REST API and the event stream send (user-guide.md), declared once for the
// server that builds them and the dashboard that reads them. Types only: it imports only types of
// common/operations (which imports nothing else), so the browser build can include it.
import type { Operation, OutputFormat } from './operations/index.js';

export type { Operation, OperationView, OutputFormat, ParamView } from './operations/index.js';

export type JobStateView = 'queued' | 'assigned' | 'running' | 'done' | 'failed' | 'cancelled';
export type WorkloadStatus = 'scheduling' | 'running' | 'completed' | 'cancelled';

export interface WorkloadView {
  workload_id: string;
  workload_name: string;
  /** The course filter; null for a workload of operations. */
  filter: string | null;
  /** The chain every image goes through, every default filled in (a course filter's is its one step). */
  operations: Operation[];
  tags: string[];
  status: WorkloadStatus;
  running_jobs: number;
  filtered_images: string[];
  total_images: number;
  queued_jobs: number;
  done_jobs: number;
  failed_jobs: number;
  cancelled_jobs: number;
  failures: { image_id: string; error: string }[];
  created_at: string;
  /** When its owner cancelled it; null while it was not. */
  cancelled_at: string | null;
  /** With `--retention` only: when it will be deleted; null while a job of it has not finished. */
  expires_at?: string | null;
  /** While it has queued jobs that no live worker can run: why ("no live worker can encode avif"). */
  waiting_for?: string;
}

/** One page of GET /workloads: newest first, and the cursor of the next (older) page, null on the last. */
export interface WorkloadPage {
  workloads: WorkloadView[];
  next_cursor: string | null;
}

/** What a deletion took with it: the answer of DELETE /workloads/{id} and DELETE /images/{id}. */
export interface RemovedView {
  deleted: true;
  removed_images: number;
  removed_bytes: number;
  /** Jobs that had not finished and were cancelled on the way. */
  cancelled_jobs: number;
}

export interface WorkloadDeleted extends RemovedView {
  workload_id: string;
  workload_name: string;
}

export interface ImageDeleted extends RemovedView {
  image_id: string;
  workload_id: string;
  type: 'original' | 'filtered';
}

/** An image of a workload as its owner sees it. */
export interface ImageView {
  image_id: string;
  type: 'original' | 'filtered';
  /** The original a filtered image was made from; null for an original. */
  source_image_id: string | null;
  mime: string;
  /** The image's format (its mime type's short name). */
  format: OutputFormat;
  width: number;
  height: number;
  bytes: number;
  created_at: string;
  /** Originals only: their job's state, its error once it failed for good, and the filtered image once done. */
  job_state?: JobStateView;
  error?: string | null;
  filtered_image_id?: string | null;
}

/** A worker's resources at one moment: one heartbeat's report, or (by the minute) the mean of a minute of them. */
export interface ResourceSample {
  t: number; // epoch ms
  cpu_load: number; // percent
  mem_used: number; // fraction 0..1
  gpu_utilization?: number; // percent, when the worker's GPU reports it
  gpu_memory_free_mb?: number;
}

export interface GpuView {
  present: boolean;
  model?: string;
  memory_total_mb?: number;
  memory_free_mb?: number;
  /** Percent busy, at the worker's last heartbeat; absent when the GPU does not report it. */
  utilization?: number;
}

/** A worker as the dashboard and operators see it: no token, no bus address. */
export interface WorkerView {
  worker_id: string;
  name: string;
  tags: string[];
  state: 'alive' | 'dead' | 'left';
  engine: string;
  filters: string[];
  slots: number;
  /** Jobs it takes beyond its slots, waiting on it for one (--prefetch); 0 when it is not alive. */
  prefetch: number;
  /** The jobs it holds, those waiting for a slot included. */
  running_jobs: number;
  free_slots: number;
  cpu_load: number; // percent
  cores: number;
  mem_used: number; // fraction 0..1
  mem_total: number; // bytes
  gpu: GpuView;
  last_seen: string;
  registered_at: string;
  /** Resource samples, oldest first: the newest of the last hour, one per heartbeat. */
  history: ResourceSample[];
  activity: WorkerActivityCounts;
}

/** What a worker did, counted over its life (its record's), across server restarts. */
export interface WorkerActivityCounts {
  /** Registrations: its first, and again after a server restart or a lost session. */
  registrations: number;
  /** Times it was declared dead (silent past its lease). */
  deaths: number;
  /** Jobs it completed. */
  jobs_done: number;
  /** Jobs that failed for good while it held them. */
  jobs_failed: number;
  /** Runs it lost: a retryable failure, or a release (it died, its lease expired, it ran past the job timeout). */
  jobs_requeued: number;
  /** Bytes of the results it uploaded: into the server. */
  bytes_in: number;
  /** Bytes of the originals it downloaded: out of the server. */
  bytes_out: number;
}

export interface WorkerActivityView extends WorkerActivityCounts {
  /** When it registered, the newest 20, oldest first. */
  registered: string[];
  left_at: string | null;
  /** When it was declared dead and when it was heard again (null: not since), the newest 20, oldest first. */
  died: { at: string; back_at: string | null }[];
}

/** GET /workers/{id}: a worker with its whole kept history and activity; also one that left or is not back yet. */
export interface WorkerDetailView extends Omit<WorkerView, 'activity'> {
  /** The week before `history` (the last hour), one point per minute (that minute's mean), oldest first. */
  history_by_minute: ResourceSample[];
  activity: WorkerActivityView;
}
